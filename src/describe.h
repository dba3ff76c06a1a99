/*-------------------------------------------------------------------------
 * describe.h
 *		An instance's field metadata (describe2), cached per backend.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_DESCRIBE_H
#define MARKETO_DESCRIBE_H

#include "postgres.h"

#include "objects.h"
#include "options.h"

/*
 * Whether Marketo can filter obj by field on conn's instance: the object's
 * standard searchable fields answer without a call; any other field costs
 * one describe call per backend and cache_ttl.
 */
extern bool marketo_field_searchable(MarketoConn *conn,
									 const MarketoObject *obj,
									 const char *field, int64 cache_ttl_ms);

/*
 * The field's name as Marketo spells it ("firstname" -> "firstName"):
 * columns match fields case-insensitively but Marketo's parameters do
 * not.  Standard fields spelled right need no call; any other costs the
 * same cached describe call as marketo_field_searchable.
 */
extern char *marketo_canonical_field(MarketoConn *conn,
									 const MarketoObject *obj,
									 const char *field, int64 cache_ttl_ms);

/* One field of an object, as describe2 lists it. */
typedef struct MarketoFieldDesc
{
	char	   *name;			/* REST name, e.g. "firstName" */
	char	   *data_type;		/* Marketo dataType, e.g. "string" */
} MarketoFieldDesc;

/* Every field of obj on conn's instance: one describe call, also refreshing the cache. */
extern List *marketo_describe_fields(MarketoConn *conn,
									 const MarketoObject *obj);

#endif							/* MARKETO_DESCRIBE_H */
