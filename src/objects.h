/*-------------------------------------------------------------------------
 * objects.h
 *		The table of Marketo objects a foreign table can show.
 *
 * Generic planning, paging and decoding code works from these
 * descriptions; adding an object is adding a row.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_OBJECTS_H
#define MARKETO_OBJECTS_H

#include "postgres.h"

/* How an endpoint says there is more. */
typedef enum MarketoPaging
{
	PAGING_NEXT_PAGE_TOKEN		/* lead database: stop when nextPageToken is
								 * absent or result is empty */
	/* activities (moreResult) and assets (offset) come with their issues */
} MarketoPaging;

typedef struct MarketoObject
{
	const char *name;			/* the table option's value, e.g. "leads" */
	const char *path;			/* e.g. "/rest/v1/leads.json" */
	MarketoPaging paging;
	int			page_size;		/* records per call */
	const char *page_size_param;	/* "batchSize" or "maxReturn" */
	const char *fields_param;	/* "fields", or NULL if not projectable */
	bool		filter_required;	/* refuse a scan with nothing pushed down */
	int			max_filter_values;	/* values per filterValues call */
	const char *const *searchable;	/* fields always searchable; NULL-ended */
	const char *const *standard;	/* other fields every instance has */
	const char *describe_path;	/* where more searchable fields are listed */
} MarketoObject;

extern const MarketoObject *marketo_object_lookup(const char *name);
extern int	marketo_object_count(void);
extern const MarketoObject *marketo_object_at(int i);
extern const char *marketo_object_names(void);	/* "leads, activities, ..." */
extern bool marketo_object_field_searchable(const MarketoObject *obj,
											const char *field);
/* field is spelled exactly as one of obj's standard or searchable fields */
extern bool marketo_object_field_known(const MarketoObject *obj,
									   const char *field);

#endif							/* MARKETO_OBJECTS_H */
