/*-------------------------------------------------------------------------
 * convert.h
 *		Marketo values (JSON, later CSV text) to and from Datums.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_CONVERT_H
#define MARKETO_CONVERT_H

#include "postgres.h"
#include "fmgr.h"

struct json_object;

/* How one column's values are converted; set up once per scan. */
typedef struct MarketoConverter
{
	Oid			typid;
	int32		typmod;
	FmgrInfo	input;			/* the type's input function */
	Oid			ioparam;
	const char *colname;		/* for error messages */
	const char *field;			/* Marketo field, for error messages */
} MarketoConverter;

extern void marketo_converter_init(MarketoConverter *cv, Oid typid,
								   int32 typmod, const char *colname,
								   const char *field);

/* A JSON value (NULL or json null: SQL NULL) as the column's type. */
extern Datum marketo_json_to_datum(MarketoConverter *cv,
								   struct json_object *value, bool *isnull);

/* Marketo's text form of a value (bulk CSV, attributes) as the column's type. */
extern Datum marketo_text_to_datum(MarketoConverter *cv, const char *text,
								   bool *isnull);

/* Follow a dotted path ("folder.value") into a record; NULL if absent. */
extern struct json_object *marketo_json_get_path(struct json_object *record,
												 const char *path);

/* The text Marketo expects for a value of type typid (filterValues). */
extern char *marketo_datum_to_text(Datum value, Oid typid);

#endif							/* MARKETO_CONVERT_H */
