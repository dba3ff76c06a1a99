/*-------------------------------------------------------------------------
 * describe.c
 *		Searchable fields from an instance's describe2, cached per backend.
 *
 * Marketo's standard lookup fields need no call; a custom field costs one
 * describe2 call, then the answer is kept for the backend until its time
 * to live passes, so planning does not spend calls query after query.
 *-------------------------------------------------------------------------
 */
#include "marketo_fdw.h"

#include <limits.h>

#include <json-c/json.h>

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "describe.h"
#include "http.h"

typedef struct DescribeCache
{
	char	   *instance;
	char	   *path;
	List	   *searchable;		/* char *, in TopMemoryContext */
	List	   *fields;			/* MarketoFieldDesc, every field */
	TimestampTz fetched_at;
	struct DescribeCache *next;
} DescribeCache;

static DescribeCache *caches = NULL;

/* The first result of describe2: {"name", "searchableFields", "fields"}. */
static struct json_object *
describe_object(MarketoConn *conn, const char *path)
{
	struct json_object *root = marketo_call(conn, "GET", path, NULL, NULL, NULL);
	struct json_object *result = json_object_object_get(root, "result");

	if (result && json_object_is_type(result, json_type_array) &&
		json_object_array_length(result) > 0)
		return json_object_array_get_idx(result, 0);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("Marketo's answer to %s describes nothing", path)));
	return NULL;				/* keep compiler quiet */
}

/* A copy of each string of a JSON array; NULL unless it is one. */
static List *
string_list(struct json_object *array)
{
	List	   *list = NIL;

	if (array == NULL || !json_object_is_type(array, json_type_array))
		return NIL;
	for (size_t i = 0; i < json_object_array_length(array); i++)
	{
		struct json_object *item = json_object_array_get_idx(array, i);

		if (json_object_is_type(item, json_type_string))
			list = lappend(list, pstrdup(json_object_get_string(item)));
	}
	return list;
}

/* describe2's fields: [{"name", "dataType", ...}], in the current context */
static List *
field_descs(struct json_object *fields)
{
	List	   *descs = NIL;

	if (fields == NULL || !json_object_is_type(fields, json_type_array))
		return NIL;
	for (size_t i = 0; i < json_object_array_length(fields); i++)
	{
		struct json_object *field = json_object_array_get_idx(fields, i);
		struct json_object *name = json_object_object_get(field, "name");
		struct json_object *type = json_object_object_get(field, "dataType");
		MarketoFieldDesc *desc;

		if (name == NULL || !json_object_is_type(name, json_type_string))
			continue;
		desc = palloc(sizeof(MarketoFieldDesc));
		desc->name = pstrdup(json_object_get_string(name));
		desc->data_type = pstrdup(type ? json_object_get_string(type) : "string");
		descs = lappend(descs, desc);
	}
	return descs;
}

static void
free_field_descs(List *descs)
{
	ListCell   *lc;

	foreach(lc, descs)
	{
		MarketoFieldDesc *desc = lfirst(lc);

		pfree(desc->name);
		pfree(desc->data_type);
	}
	list_free_deep(descs);
}

/*
 * Fill cache from one describe2 call: searchableFields ([["email"],
 * ["a","b"]]; compound keys are skipped) and the names of all fields.
 */
static void
fetch_describe(MarketoConn *conn, DescribeCache *cache)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "marketo_fdw describe",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	struct json_object *desc = describe_object(conn, cache->path);
	struct json_object *keys = json_object_object_get(desc, "searchableFields");
	struct json_object *fields = json_object_object_get(desc, "fields");

	list_free_deep(cache->searchable);
	free_field_descs(cache->fields);
	cache->searchable = NIL;
	cache->fields = NIL;
	if (keys && json_object_is_type(keys, json_type_array))
	{
		for (size_t i = 0; i < json_object_array_length(keys); i++)
		{
			/* built in cxt: only single-field keys are kept */
			List	   *key = string_list(json_object_array_get_idx(keys, i));

			if (list_length(key) == 1)
			{
				MemoryContextSwitchTo(TopMemoryContext);
				cache->searchable = lappend(cache->searchable,
											pstrdup(linitial(key)));
				MemoryContextSwitchTo(cxt);
			}
		}
	}
	MemoryContextSwitchTo(TopMemoryContext);
	cache->fields = field_descs(fields);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* obj's describe on conn's instance, fetched when missing or older than ttl. */
static DescribeCache *
get_describe(MarketoConn *conn, const MarketoObject *obj, int64 cache_ttl_ms)
{
	DescribeCache *cache;
	TimestampTz now = GetCurrentTimestamp();

	for (cache = caches; cache; cache = cache->next)
	{
		if (strcmp(cache->instance, conn->instance) == 0 &&
			strcmp(cache->path, obj->describe_path) == 0)
			break;
	}
	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(TopMemoryContext, sizeof(DescribeCache));
		cache->instance = MemoryContextStrdup(TopMemoryContext, conn->instance);
		cache->path = MemoryContextStrdup(TopMemoryContext, obj->describe_path);
		cache->next = caches;
		caches = cache;
	}
	if (cache->fetched_at == 0 ||
		TimestampDifferenceExceeds(cache->fetched_at, now,
								   (int) Min(cache_ttl_ms, INT_MAX)))
	{
		fetch_describe(conn, cache);
		cache->fetched_at = now;
	}
	return cache;
}

/* The member of names equal to name but for case, or NULL. */
static const char *
find_caseless(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
	{
		if (pg_strcasecmp(lfirst(lc), name) == 0)
			return lfirst(lc);
	}
	return NULL;
}

bool
marketo_field_searchable(MarketoConn *conn, const MarketoObject *obj,
						 const char *field, int64 cache_ttl_ms)
{
	if (marketo_object_field_searchable(obj, field))
		return true;
	if (obj->describe_path == NULL)
		return false;
	return find_caseless(get_describe(conn, obj, cache_ttl_ms)->searchable,
						 field) != NULL;
}

char *
marketo_canonical_field(MarketoConn *conn, const MarketoObject *obj,
						const char *field, int64 cache_ttl_ms)
{
	ListCell   *lc;

	if (obj->describe_path == NULL || marketo_object_field_known(obj, field))
		return pstrdup(field);
	foreach(lc, get_describe(conn, obj, cache_ttl_ms)->fields)
	{
		MarketoFieldDesc *desc = lfirst(lc);

		if (pg_strcasecmp(desc->name, field) == 0)
			return pstrdup(desc->name);
	}
	return pstrdup(field);
}

List *
marketo_describe_fields(MarketoConn *conn, const MarketoObject *obj)
{
	List	   *copy = NIL;
	ListCell   *lc;

	/* a time to live of 0: fresh, and the backend's cache refreshed too */
	foreach(lc, get_describe(conn, obj, 0)->fields)
	{
		MarketoFieldDesc *desc = palloc(sizeof(MarketoFieldDesc));

		*desc = *(MarketoFieldDesc *) lfirst(lc);
		desc->name = pstrdup(desc->name);
		desc->data_type = pstrdup(desc->data_type);
		copy = lappend(copy, desc);
	}
	return copy;
}
