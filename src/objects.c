/*-------------------------------------------------------------------------
 * objects.c
 *		The table of Marketo objects.
 *
 * Each row says where an object lives, how it pages and which filters
 * Marketo answers for it; plan.c and scan.c work only from these rows.
 *-------------------------------------------------------------------------
 */
#include "marketo_fdw.h"

#include "lib/stringinfo.h"

#include "objects.h"


/*
 * Lead fields every instance can filter on (Marketo's standard set); an
 * instance's describe2 searchableFields may add custom fields.
 */
static const char *const lead_searchable[] = {
	"id", "email", "cookies", "facebookId", "linkedInId", "twitterId",
	"leadPartitionId", "sfdcAccountId", "sfdcContactId", "sfdcLeadId",
	"sfdcLeadOwnerId", "sfdcOpptyId", NULL
};

/* Standard lead fields, spelled as Marketo spells them */
static const char *const lead_standard[] = {
	"firstName", "lastName", "middleName", "company", "title", "phone",
	"mobilePhone", "website", "address", "city", "state", "country",
	"postalCode", "leadScore", "leadStatus", "leadSource", "createdAt",
	"updatedAt", "unsubscribed", "doNotCall", "industry", NULL
};

static const MarketoObject objects[] = {
	{
		.name = "leads",
		.path = "/rest/v1/leads.json",
		.paging = PAGING_NEXT_PAGE_TOKEN,
		.page_size = MARKETO_LEAD_BATCH,
		.page_size_param = "batchSize",
		.fields_param = "fields",
		.filter_required = true,
		.max_filter_values = MARKETO_LEAD_BATCH,
		.searchable = lead_searchable,
		.standard = lead_standard,
		.describe_path = "/rest/v1/leads/describe2.json",
	},
};

const MarketoObject *
marketo_object_lookup(const char *name)
{
	for (int i = 0; i < lengthof(objects); i++)
	{
		if (strcmp(objects[i].name, name) == 0)
			return &objects[i];
	}
	return NULL;
}

int
marketo_object_count(void)
{
	return lengthof(objects);
}

const MarketoObject *
marketo_object_at(int i)
{
	return &objects[i];
}

const char *
marketo_object_names(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < lengthof(objects); i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", objects[i].name);
	return buf.data;
}

static bool
in_list(const char *const *list, const char *field, bool caseless)
{
	if (list == NULL)
		return false;
	for (const char *const *f = list; *f != NULL; f++)
	{
		if ((caseless ? pg_strcasecmp(*f, field) : strcmp(*f, field)) == 0)
			return true;
	}
	return false;
}

bool
marketo_object_field_searchable(const MarketoObject *obj, const char *field)
{
	return in_list(obj->searchable, field, true);
}

bool
marketo_object_field_known(const MarketoObject *obj, const char *field)
{
	return in_list(obj->searchable, field, false) ||
		in_list(obj->standard, field, false);
}
