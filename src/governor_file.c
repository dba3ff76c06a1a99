/*-------------------------------------------------------------------------
 *
 * governor_file.c
 *		The file that keeps the day's counters over a clean restart.
 *
 * Marketo keeps counting its daily quota while the server restarts, so
 * the governor must not start the day afresh: the postmaster writes every
 * instance's counters to GOV_STAT_FILE at shutdown and reads back today's
 * at startup, as pg_stat_statements does with its statistics.  After a
 * crash the governor starts clean, since the counters may be inconsistent.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "pgstat.h"
#include "storage/fd.h"
#include "utils/timestamp.h"

#include "governor_internal.h"

#define GOV_STAT_FILE		PGSTAT_STAT_PERMANENT_DIRECTORY "/marketo_fdw_governor.stat"
#define GOV_STAT_TMPFILE	GOV_STAT_FILE ".tmp"
#define GOV_STAT_MAGIC		0x4d4b4746	/* "MKGF" */
#define GOV_STAT_VERSION	2

/* The file: this header, then per instance its name and its GovDay. */
typedef struct GovFileHeader
{
	uint32		magic;
	uint32		version;
	uint32		name_len;		/* the layout this file was written with */
	uint32		day_len;
	int32		count;			/* records that follow */
} GovFileHeader;

/* Today's records of an open GOV_STAT_FILE into gov; false if it is invalid. */
static bool
read_saved_instances(GovShared *gov, FILE *file, int32 today)
{
	GovFileHeader header;
	char		names[GOV_MAX_INSTANCES][GOVERNOR_INSTANCE_LEN];
	GovDay		days[GOV_MAX_INSTANCES];

	if (fread(&header, sizeof(header), 1, file) != 1 ||
		header.magic != GOV_STAT_MAGIC ||
		header.version != GOV_STAT_VERSION ||
		header.name_len != GOVERNOR_INSTANCE_LEN ||
		header.day_len != sizeof(GovDay) ||
		header.count < 0 || header.count > GOV_MAX_INSTANCES)
		return false;

	/* read every record before using any: a short file is used not at all */
	for (int i = 0; i < header.count; i++)
	{
		if (fread(names[i], sizeof(names[i]), 1, file) != 1 ||
			fread(&days[i], sizeof(days[i]), 1, file) != 1)
			return false;
		names[i][GOVERNOR_INSTANCE_LEN - 1] = '\0';
	}
	for (int i = 0; i < header.count; i++)
	{
		/* another day's counters are of no use */
		if (days[i].day_key == today)
		{
			GovInstance *inst = &gov->instances[gov->ninstances++];

			strlcpy(inst->name, names[i], sizeof(inst->name));
			inst->day = days[i];
		}
	}
	return true;
}

/*
 * Read back the counters the postmaster saved at the last clean shutdown.
 * No locks: no other process is running yet.
 */
void
governor_load(void)
{
	FILE	   *file;
	pg_tz	   *tz;
	int32		today;

	tz = governor_quota_tz(LOG);
	if (tz == NULL)
		return;

	file = AllocateFile(GOV_STAT_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", GOV_STAT_FILE)));
		return;
	}
	today = governor_day_key_at(GetCurrentTimestamp(), tz);
	if (!read_saved_instances(governor_shared, file, today))
		ereport(LOG,
				(errmsg("ignoring invalid data in file \"%s\"", GOV_STAT_FILE)));
	FreeFile(file);

	/* a crash before the next clean shutdown must not bring these back */
	unlink(GOV_STAT_FILE);
}

/*
 * on_shmem_exit in the postmaster: keep the day's counters over a clean
 * restart.  A temporary file and a durable rename mean a crash while
 * writing leaves the old file or none, never half of one.
 */
void
governor_save(int code, Datum arg)
{
	GovShared  *gov = governor_shared;
	FILE	   *file;
	GovFileHeader header = {GOV_STAT_MAGIC, GOV_STAT_VERSION, GOVERNOR_INSTANCE_LEN,
	sizeof(GovDay), gov->ninstances};

	/* after a crash, start clean: the counters may be inconsistent */
	if (code != 0)
		return;

	file = AllocateFile(GOV_STAT_TMPFILE, PG_BINARY_W);
	if (file == NULL ||
		fwrite(&header, sizeof(header), 1, file) != 1)
		goto error;
	for (int i = 0; i < gov->ninstances; i++)
	{
		GovInstance *inst = &gov->instances[i];

		if (fwrite(inst->name, sizeof(inst->name), 1, file) != 1 ||
			fwrite(&inst->day, sizeof(inst->day), 1, file) != 1)
			goto error;
	}
	if (FreeFile(file) != 0)
	{
		file = NULL;
		goto error;
	}
	(void) durable_rename(GOV_STAT_TMPFILE, GOV_STAT_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", GOV_STAT_TMPFILE)));
	if (file)
		FreeFile(file);
	unlink(GOV_STAT_TMPFILE);
}
