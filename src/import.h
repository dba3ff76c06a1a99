/*-------------------------------------------------------------------------
 * import.h
 *		IMPORT FOREIGN SCHEMA marketo: a foreign table per Marketo object.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_IMPORT_H
#define MARKETO_IMPORT_H

#include "postgres.h"
#include "nodes/parsenodes.h"

extern List *marketoImportForeignSchema(ImportForeignSchemaStmt *stmt,
										Oid serverOid);

#endif							/* MARKETO_IMPORT_H */
