/*-------------------------------------------------------------------------
 *
 * governor_day.c
 *		Marketo's day: the daily quota counts from midnight in Chicago.
 *
 * A day is named by the Julian day number of its date in Chicago, so the
 * governor can tell at a glance whether its counters belong to today.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "governor_internal.h"

#define GOV_QUOTA_TIMEZONE	"America/Chicago"	/* where Marketo's day starts */

/*
 * The rules of Marketo's time zone; NULL, after a message at elevel, if
 * this server has no such zone.
 */
pg_tz *
governor_quota_tz(int elevel)
{
	static pg_tz *tz = NULL;

	if (tz == NULL)
	{
		tz = pg_tzset(GOV_QUOTA_TIMEZONE);
		if (tz == NULL)
			ereport(elevel,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("time zone \"%s\" is not available",
							GOV_QUOTA_TIMEZONE),
					 errdetail("Marketo counts its daily quota from midnight in that time zone.")));
	}
	return tz;
}

/* The date in Chicago at ts, as a Julian day number. */
int32
governor_day_key_at(TimestampTz ts, pg_tz *tz)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;

	if (timestamp2tm(ts, &tzoff, &tm, &fsec, NULL, tz) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return date2j(tm.tm_year, tm.tm_mon, tm.tm_mday);
}

int32
governor_current_day(TimestampTz now)
{
	return governor_day_key_at(now, governor_quota_tz(ERROR));
}

/* The midnight in Chicago that ends day day_key, daylight saving included. */
TimestampTz
governor_day_end(int32 day_key)
{
	struct pg_tm tm;
	int			tzoff;
	TimestampTz result;

	memset(&tm, 0, sizeof(tm));
	j2date(day_key + 1, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	tzoff = DetermineTimeZoneOffset(&tm, governor_quota_tz(ERROR));
	if (tm2timestamp(&tm, 0, &tzoff, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

TimestampTz
governor_quota_reset_time(void)
{
	return governor_day_end(governor_current_day(GetCurrentTimestamp()));
}
