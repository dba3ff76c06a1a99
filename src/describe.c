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
	TimestampTz fetched_at;
	struct DescribeCache *next;
} DescribeCache;

static DescribeCache *caches = NULL;

static DescribeCache *
find_cache(const char *instance, const char *path)
{
	for (DescribeCache *c = caches; c; c = c->next)
	{
		if (strcmp(c->instance, instance) == 0 && strcmp(c->path, path) == 0)
			return c;
	}
	return NULL;
}

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

/* searchableFields: [["email"],["id"],["a","b"]]; compound keys are skipped. */
static List *
fetch_searchable(MarketoConn *conn, const char *path)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "marketo_fdw describe",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	struct json_object *fields = json_object_object_get(describe_object(conn, path),
														 "searchableFields");
	List	   *searchable = NIL;

	MemoryContextSwitchTo(TopMemoryContext);
	if (fields && json_object_is_type(fields, json_type_array))
	{
		for (size_t i = 0; i < json_object_array_length(fields); i++)
		{
			struct json_object *key = json_object_array_get_idx(fields, i);

			if (json_object_is_type(key, json_type_array) &&
				json_object_array_length(key) == 1)
				searchable = lappend(searchable,
									 pstrdup(json_object_get_string(json_object_array_get_idx(key, 0))));
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return searchable;
}

bool
marketo_field_searchable(MarketoConn *conn, const MarketoObject *obj,
						 const char *field, int64 cache_ttl_ms)
{
	DescribeCache *cache;
	TimestampTz now = GetCurrentTimestamp();
	ListCell   *lc;

	if (marketo_object_field_searchable(obj, field))
		return true;
	if (obj->describe_path == NULL)
		return false;

	cache = find_cache(conn->instance, obj->describe_path);
	if (cache == NULL || TimestampDifferenceExceeds(cache->fetched_at, now,
													(int) Min(cache_ttl_ms, INT_MAX)))
	{
		List	   *searchable = fetch_searchable(conn, obj->describe_path);

		if (cache == NULL)
		{
			cache = MemoryContextAllocZero(TopMemoryContext, sizeof(DescribeCache));
			cache->instance = MemoryContextStrdup(TopMemoryContext, conn->instance);
			cache->path = MemoryContextStrdup(TopMemoryContext, obj->describe_path);
			cache->next = caches;
			caches = cache;
		}
		else
			list_free_deep(cache->searchable);
		cache->searchable = searchable;
		cache->fetched_at = now;
	}

	foreach(lc, cache->searchable)
	{
		if (pg_strcasecmp(lfirst(lc), field) == 0)
			return true;
	}
	return false;
}

List *
marketo_describe_fields(MarketoConn *conn, const MarketoObject *obj)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "marketo_fdw describe",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	struct json_object *fields = json_object_object_get(describe_object(conn, obj->describe_path),
														 "fields");
	List	   *result = NIL;

	MemoryContextSwitchTo(old);
	if (fields && json_object_is_type(fields, json_type_array))
	{
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
			result = lappend(result, desc);
		}
	}
	MemoryContextDelete(cxt);
	return result;
}
