/*-------------------------------------------------------------------------
 * convert.c
 *		Marketo values (JSON, later CSV text) to and from Datums.
 *
 * Values are converted by the type of the foreign-table column, not by the
 * dataType Marketo declares for the field: that declaration is unreliable
 * (percent fields carry decimals, amounts arrive as strings).  Both entry
 * points, JSON and text, describe the value as a MarketoValue and share one
 * dispatch, so each column type is handled in exactly one place.
 *
 * This runs once per field per row, so nothing here looks at the catalogs
 * per value: the converter caches the input function, and types are
 * recognised by OID.  Domains and types without special handling get the
 * value's text through their input function.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

/*
 * fmgrprotos.h declares the SQL function json_object(), which clashes with
 * json-c's typedef of the same name; hide the former, which is not used.
 */
#define json_object pg_json_object_unused
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#undef json_object

#include <json.h>

#include "convert.h"

/*
 * How JSON containers are turned into text.  Slashes stay unescaped so that
 * URLs in a text or json column read as Marketo sent them.
 */
#define MARKETO_JSON_FLAGS	(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Longest value shown in error messages, in bytes (as COPY does) */
#define MAX_VALUE_DISPLAY	100

/* "YYYY-MM-DD HH:MM:SS.fffffffff+HH:MM" and the terminator, with room */
#define DATETIME_BUFLEN		48

/* Fraction digits kept; PostgreSQL rounds to six anyway */
#define MAX_FRACTION_DIGITS 9

/* What a value looked like where it came from */
typedef enum MarketoValueKind
{
	MKV_TEXT,					/* untyped text (bulk CSV, attributes) */
	MKV_STRING,					/* JSON string */
	MKV_INT,					/* JSON integer */
	MKV_DOUBLE,					/* JSON number with a fraction or exponent */
	MKV_BOOL,					/* JSON boolean */
	MKV_CONTAINER				/* JSON object or array */
} MarketoValueKind;

/*
 * One value being converted.  Its text is produced only when a conversion
 * needs it, since integers and booleans usually don't.
 */
typedef struct MarketoValue
{
	MarketoValueKind kind;
	struct json_object *jso;	/* the JSON value; NULL for MKV_TEXT */
	const char *raw;			/* text as Marketo sent it (UTF-8) */
	const char *text;			/* raw in the server encoding */
} MarketoValue;

/* Error context for calls that may fail on a value */
typedef struct ValueContext
{
	ErrorContextCallback callback;
	const MarketoConverter *cv;
	const char *shown;			/* value to show, server encoding; or NULL */
} ValueContext;

/* Result of reading a number's text as an exact integer */
typedef enum IntegralResult
{
	INTEGRAL_OK,
	INTEGRAL_SYNTAX,			/* not a plain number */
	INTEGRAL_FRACTION,			/* has a non-zero fraction */
	INTEGRAL_RANGE				/* beyond 64 bits */
} IntegralResult;

static void conversion_error(const MarketoConverter *cv, MarketoValue *v,
							 const char *hint) pg_attribute_noreturn();


/* ----------------------------------------------------------------
 * Error reporting
 * ----------------------------------------------------------------
 */

/* A value cut to a length fit for a message, on a character boundary. */
static char *
clip_for_message(const char *s)
{
	int			len = strlen(s);
	int			cliplen;

	if (len <= MAX_VALUE_DISPLAY)
		return pstrdup(s);
	cliplen = pg_mbcliplen(s, len, MAX_VALUE_DISPLAY);
	return psprintf("%.*s...", cliplen, s);
}

static void
value_error_callback(void *arg)
{
	ValueContext *ctx = (ValueContext *) arg;

	if (ctx->shown)
		errcontext("Marketo field \"%s\", column \"%s\", value \"%s\"",
				   ctx->cv->field, ctx->cv->colname,
				   clip_for_message(ctx->shown));
	else
		errcontext("Marketo field \"%s\", column \"%s\"",
				   ctx->cv->field, ctx->cv->colname);
}

/*
 * Name the field, column and value in any error raised until the matching
 * pop.  Errors from input functions (invalid syntax, too long for varchar)
 * then say which Marketo value caused them; an error context is cheaper
 * than catching and re-throwing, and keeps the original SQLSTATE.
 */
static void
value_context_push(ValueContext *ctx, const MarketoConverter *cv,
				   const char *shown)
{
	ctx->cv = cv;
	ctx->shown = shown;
	ctx->callback.callback = value_error_callback;
	ctx->callback.arg = ctx;
	ctx->callback.previous = error_context_stack;
	error_context_stack = &ctx->callback;
}

static void
value_context_pop(ValueContext *ctx)
{
	error_context_stack = ctx->callback.previous;
}

/* ----------------------------------------------------------------
 * Values
 * ----------------------------------------------------------------
 */

/* The value's text as Marketo sent it; containers as compact JSON. */
static const char *
value_raw(MarketoValue *v)
{
	if (v->raw == NULL)
	{
		if (v->kind == MKV_CONTAINER)
			v->raw = json_object_to_json_string_ext(v->jso, MARKETO_JSON_FLAGS);
		else
			v->raw = json_object_get_string(v->jso);
	}
	return v->raw;
}

/*
 * Marketo's UTF-8 text in the server encoding.  This also validates it:
 * json-c and the CSV reader do not check UTF-8, and input functions such as
 * textin trust that their input is valid.
 */
static char *
to_server_encoding(const MarketoConverter *cv, const char *s)
{
	ValueContext ctx;
	char	   *result;

	/* the value can't be shown: it is what failed to convert */
	value_context_push(&ctx, cv, NULL);
	result = pg_any_to_server(s, strlen(s), PG_UTF8);
	value_context_pop(&ctx);
	return result;
}

/* The value's text in the server encoding. */
static const char *
value_text(const MarketoConverter *cv, MarketoValue *v)
{
	if (v->text == NULL)
	{
		const char *raw = value_raw(v);

		/* numbers and booleans are ASCII */
		if (v->kind == MKV_TEXT || v->kind == MKV_STRING ||
			v->kind == MKV_CONTAINER)
			v->text = to_server_encoding(cv, raw);
		else
			v->text = raw;
	}
	return v->text;
}

/*
 * An empty string where Marketo has no value to give: Marketo stores "" as
 * null, so a non-text column reads it as NULL rather than failing.
 */
static bool
value_is_empty(const MarketoValue *v)
{
	if (v->kind == MKV_STRING)
		return json_object_get_string_len(v->jso) == 0;
	if (v->kind == MKV_TEXT)
		return v->raw[0] == '\0';
	return false;
}

static void
conversion_error(const MarketoConverter *cv, MarketoValue *v,
				 const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("cannot convert Marketo field \"%s\" to column \"%s\" of type %s",
					cv->field, cv->colname, format_type_be(cv->typid)),
			 errdetail("Value: %s", clip_for_message(value_text(cv, v))),
			 hint ? errhint("%s", hint) : 0));
}

/* The column type's input function, with the value named in its errors. */
static Datum
call_input(MarketoConverter *cv, const char *str, const char *shown)
{
	ValueContext ctx;
	Datum		result;

	value_context_push(&ctx, cv, shown);
	result = InputFunctionCall(&cv->input, unconstify(char *, str),
							   cv->ioparam, cv->typmod);
	value_context_pop(&ctx);
	return result;
}

/* ----------------------------------------------------------------
 * Integers
 * ----------------------------------------------------------------
 */

/*
 * Read a number's text ("42", "-7", "5.0", "1.5e3") as an exact integer.
 *
 * This works on the digits rather than on a double so that a large value
 * keeps every digit and "1.0000000000000000001" is seen to have a
 * fraction.  The syntax is JSON's, plus leading zeros.
 */
static IntegralResult
parse_integral(const char *s, int64 *result)
{
	const char *p = s;
	const char *intpart;
	const char *fracpart = NULL;
	int			nint;
	int			nfrac = 0;
	int			exponent = 0;
	int64		point;			/* digits before the decimal point */
	uint64		acc = 0;
	bool		neg = false;
	int			i;

	if (*p == '-')
	{
		neg = true;
		p++;
	}
	if (!isdigit((unsigned char) *p))
		return INTEGRAL_SYNTAX;
	intpart = p;
	while (isdigit((unsigned char) *p))
		p++;
	nint = p - intpart;

	if (*p == '.')
	{
		fracpart = ++p;
		while (isdigit((unsigned char) *p))
			p++;
		nfrac = p - fracpart;
		if (nfrac == 0)
			return INTEGRAL_SYNTAX;
	}

	if (*p == 'e' || *p == 'E')
	{
		bool		negexp = false;

		p++;
		if (*p == '+' || *p == '-')
			negexp = (*p++ == '-');
		if (!isdigit((unsigned char) *p))
			return INTEGRAL_SYNTAX;
		for (; isdigit((unsigned char) *p); p++)
		{
			/* past this, the value is 0 or out of range either way */
			if (exponent < 100000)
				exponent = exponent * 10 + (*p - '0');
		}
		if (negexp)
			exponent = -exponent;
	}
	if (*p != '\0')
		return INTEGRAL_SYNTAX;

	/* digits at or after the decimal point must be zero */
	point = (int64) nint + exponent;
	for (i = 0; i < nint + nfrac; i++)
	{
		int			digit = (i < nint ? intpart[i] : fracpart[i - nint]) - '0';

		if (i >= point)
		{
			if (digit != 0)
				return INTEGRAL_FRACTION;
			continue;
		}
		if (acc > (PG_UINT64_MAX - digit) / 10)
			return INTEGRAL_RANGE;
		acc = acc * 10 + digit;
	}
	/* a positive exponent beyond the digits appends zeros */
	for (; acc != 0 && i < point; i++)
	{
		if (acc > PG_UINT64_MAX / 10)
			return INTEGRAL_RANGE;
		acc *= 10;
	}

	if (neg)
	{
		if (acc > (uint64) PG_INT64_MAX + 1)
			return INTEGRAL_RANGE;
		*result = (acc == (uint64) PG_INT64_MAX + 1) ? PG_INT64_MIN : -(int64) acc;
	}
	else
	{
		if (acc > (uint64) PG_INT64_MAX)
			return INTEGRAL_RANGE;
		*result = (int64) acc;
	}
	return INTEGRAL_OK;
}

/* An int64 as an int2, int4 or int8 Datum, if it fits. */
static Datum
integer_datum(const MarketoConverter *cv, MarketoValue *v, int64 n)
{
	switch (cv->typid)
	{
		case INT2OID:
			if (n < PG_INT16_MIN || n > PG_INT16_MAX)
				conversion_error(cv, v, NULL);
			return Int16GetDatum((int16) n);
		case INT4OID:
			if (n < PG_INT32_MIN || n > PG_INT32_MAX)
				conversion_error(cv, v, NULL);
			return Int32GetDatum((int32) n);
		default:
			return Int64GetDatum(n);
	}
}

/*
 * int2, int4, int8.  Numbers are read exactly and range-checked here; a
 * number with a fraction is an error rather than silently rounded, since
 * the column should have been numeric.  Strings that are not plain numbers
 * (" 42", "+42") are left to the input function.
 */
static Datum
convert_integer(MarketoConverter *cv, MarketoValue *v, bool *isnull)
{
	int64		n = 0;

	switch (v->kind)
	{
		case MKV_INT:
			/* json-c keeps integers above INT64_MAX as uint64 */
			n = json_object_get_int64(v->jso);
			if (n == PG_INT64_MAX &&
				json_object_get_uint64(v->jso) > (uint64) PG_INT64_MAX)
				conversion_error(cv, v, NULL);
			break;

		case MKV_DOUBLE:
		case MKV_STRING:
		case MKV_TEXT:
			if (value_is_empty(v))
			{
				*isnull = true;
				return (Datum) 0;
			}
			switch (parse_integral(value_raw(v), &n))
			{
				case INTEGRAL_OK:
					break;
				case INTEGRAL_FRACTION:
					conversion_error(cv, v,
									 _("The value has a fractional part; declare the column as numeric."));
					break;
				case INTEGRAL_RANGE:
					conversion_error(cv, v, NULL);
					break;
				case INTEGRAL_SYNTAX:
					/* json-c's NaN and Infinity are doubles too */
					if (v->kind == MKV_DOUBLE)
						conversion_error(cv, v, NULL);
					return call_input(cv, value_text(cv, v), value_text(cv, v));
			}
			break;

		case MKV_BOOL:
		case MKV_CONTAINER:
			conversion_error(cv, v, NULL);
			break;
	}
	return integer_datum(cv, v, n);
}

/* ----------------------------------------------------------------
 * numeric, float4, float8, bool
 * ----------------------------------------------------------------
 */

/*
 * numeric, float4, float8: from the number's text exactly as Marketo sent
 * it (json-c keeps the original text of a parsed double), so numeric gets
 * "34.66" and not the double nearest to it.  Strings are accepted too:
 * amounts come as "1604.47".
 */
static Datum
convert_number(MarketoConverter *cv, MarketoValue *v, bool *isnull)
{
	if (v->kind == MKV_BOOL || v->kind == MKV_CONTAINER)
		conversion_error(cv, v, NULL);
	if (value_is_empty(v))
	{
		*isnull = true;
		return (Datum) 0;
	}
	return call_input(cv, value_text(cv, v), value_text(cv, v));
}

/* bool: JSON booleans, 0 and 1, and "true"/"false"/"1"/"0" as text. */
static Datum
convert_bool(MarketoConverter *cv, MarketoValue *v, bool *isnull)
{
	const char *s;

	switch (v->kind)
	{
		case MKV_BOOL:
			return BoolGetDatum(json_object_get_boolean(v->jso));

		case MKV_INT:
			{
				int64		n = json_object_get_int64(v->jso);

				if (n == 0 || n == 1)
					return BoolGetDatum(n == 1);
				break;
			}

		case MKV_STRING:
		case MKV_TEXT:
			if (value_is_empty(v))
			{
				*isnull = true;
				return (Datum) 0;
			}
			s = value_raw(v);
			if (pg_strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
				return BoolGetDatum(true);
			if (pg_strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
				return BoolGetDatum(false);
			break;

		case MKV_DOUBLE:
		case MKV_CONTAINER:
			break;
	}
	conversion_error(cv, v, NULL);
}

/* ----------------------------------------------------------------
 * timestamptz, timestamp, date
 * ----------------------------------------------------------------
 */

static bool
all_digits(const char *s, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) s[i]))
			return false;
	}
	return true;
}

/*
 * Rewrite one of Marketo's datetime spellings as
 * "YYYY-MM-DD HH:MM:SS[.fff]+HH:MM" in buf, with the zone always explicit:
 *
 *	"2016-05-17T22:11:45Z", "2020-08-30T05:49:48.000Z"
 *	"2015-05-21T22:45:13Z+0000"	(asset API: Z and an offset; the offset wins)
 *	"2014-09-17T22:31:49+0000", "2015-05-07T11:47:30-08:00"
 *	"2014-11-13 12:43:04"		(no zone: UTC, like everything else Marketo sends)
 *	"2020-08-30"				(a date: midnight UTC)
 *
 * Only the shape is checked here; timestamptz_in checks the ranges.  Returns
 * false for any other shape, to be given to the input function unchanged.
 * *utc tells whether the offset is zero, so that the date part is the UTC
 * date.
 */
static bool
normalize_datetime(const char *s, char *buf, bool *utc)
{
	const char *p = s;
	char	   *out = buf;
	int			ndigits;

	/* YYYY-MM-DD */
	if (!all_digits(p, 4) || p[4] != '-' || !all_digits(p + 5, 2) ||
		p[7] != '-' || !all_digits(p + 8, 2))
		return false;
	memcpy(out, p, 10);
	out += 10;
	p += 10;
	if (*p == '\0')
	{
		strcpy(out, " 00:00:00+00");
		*utc = true;
		return true;
	}

	/* HH:MM[:SS[.fff]] */
	if (*p != 'T' && *p != 't' && *p != ' ')
		return false;
	p++;
	if (!all_digits(p, 2) || p[2] != ':' || !all_digits(p + 3, 2))
		return false;
	*out++ = ' ';
	memcpy(out, p, 5);
	out += 5;
	p += 5;
	if (*p == ':')
	{
		if (!all_digits(p + 1, 2))
			return false;
		memcpy(out, p, 3);
		out += 3;
		p += 3;
	}
	if (*p == '.')
	{
		*out++ = *p++;
		for (ndigits = 0; isdigit((unsigned char) *p); ndigits++, p++)
		{
			/* further digits cannot change rounding to microseconds */
			if (ndigits < MAX_FRACTION_DIGITS)
				*out++ = *p;
		}
		if (ndigits == 0)
			return false;
	}

	/* zone: Z, an offset (+HH, +HHMM, +HH:MM), both, or none */
	if (*p == 'Z' || *p == 'z')
		p++;
	if (*p == '+' || *p == '-')
	{
		const char *hours = p + 1;
		const char *minutes = "00";

		if (!all_digits(hours, 2))
			return false;
		p += 3;
		if (*p == ':')
			p++;
		if (*p != '\0')
		{
			if (!all_digits(p, 2))
				return false;
			minutes = p;
			p += 2;
		}
		*out++ = hours[-1];
		memcpy(out, hours, 2);
		out[2] = ':';
		memcpy(out + 3, minutes, 2);
		out += 5;
		*utc = (strncmp(hours, "00", 2) == 0 && strncmp(minutes, "00", 2) == 0);
	}
	else
	{
		strcpy(out, "+00");
		out += 3;
		*utc = true;
	}
	if (*p != '\0')
		return false;
	*out = '\0';
	Assert(out - buf < DATETIME_BUFLEN);
	return true;
}

/*
 * timestamptz_in on a text with an explicit zone: the instant, which is
 * also its UTC wall time as a Timestamp.
 */
static TimestampTz
parse_instant(MarketoConverter *cv, const char *str, int32 typmod,
			  const char *shown)
{
	ValueContext ctx;
	Datum		result;

	value_context_push(&ctx, cv, shown);
	result = DirectFunctionCall3(timestamptz_in,
								 CStringGetDatum(str),
								 ObjectIdGetDatum(InvalidOid),
								 Int32GetDatum(typmod));
	value_context_pop(&ctx);
	return DatumGetTimestampTz(result);
}

/*
 * timestamptz, timestamp, date.  A timestamp column holds the UTC wall
 * time of the instant (timestamp_in would ignore the offset); a date
 * column the UTC date.  The same typmod rounding applies to timestamptz
 * and timestamp, so the instant can be rounded as timestamptz.
 */
static Datum
convert_datetime(MarketoConverter *cv, MarketoValue *v, bool *isnull)
{
	char		buf[DATETIME_BUFLEN];
	const char *s;
	bool		utc;

	if (v->kind != MKV_STRING && v->kind != MKV_TEXT)
		conversion_error(cv, v, NULL);
	if (value_is_empty(v))
	{
		*isnull = true;
		return (Datum) 0;
	}
	s = value_text(cv, v);

	if (!normalize_datetime(s, buf, &utc))
	{
		/* some other spelling ("infinity"?): the input functions decide */
		if (cv->typid == TIMESTAMPOID)
			return TimestampGetDatum(parse_instant(cv, s, cv->typmod, s));
		return call_input(cv, s, s);
	}

	switch (cv->typid)
	{
		case TIMESTAMPTZOID:
			return call_input(cv, buf, s);
		case TIMESTAMPOID:
			return TimestampGetDatum(parse_instant(cv, buf, cv->typmod, s));
		default:
			Assert(cv->typid == DATEOID);
			if (utc)
			{
				buf[10] = '\0'; /* the date part is the UTC date */
				return call_input(cv, buf, s);
			}
			return DirectFunctionCall1(timestamp_date,
									   TimestampGetDatum(parse_instant(cv, buf, -1, s)));
	}
}

/* ----------------------------------------------------------------
 * json, jsonb, arrays, text
 * ----------------------------------------------------------------
 */

/* Whether text is one JSON value, by PostgreSQL's own grammar. */
static bool
is_json(const char *s)
{
	JsonLexContext *lex;
	bool		result;

	lex = makeJsonLexContextCstringLen(unconstify(char *, s), strlen(s),
									   GetDatabaseEncoding(), false);
	result = (pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS);
	pfree(lex);
	return result;
}

/*
 * The value as JSON text in the server encoding.  JSON strings stay JSON
 * strings.  Text from a file is taken as JSON if it is JSON (the activity
 * attributes column) and as a string otherwise.
 */
static const char *
value_json_text(const MarketoConverter *cv, MarketoValue *v)
{
	const char *s;
	StringInfoData buf;

	switch (v->kind)
	{
		case MKV_STRING:
			return to_server_encoding(cv,
									  json_object_to_json_string_ext(v->jso, MARKETO_JSON_FLAGS));
		case MKV_TEXT:
			s = value_text(cv, v);
			if (is_json(s))
				return s;
			initStringInfo(&buf);
			escape_json(&buf, s);
			return buf.data;
		default:
			return value_text(cv, v);
	}
}

/* json, jsonb */
static Datum
convert_json(MarketoConverter *cv, MarketoValue *v)
{
	return call_input(cv, value_json_text(cv, v), value_text(cv, v));
}

/*
 * Append one JSON array element to an array literal: quoted, as its text
 * (nested containers as JSON), or NULL for JSON null.
 */
static void
append_array_element(StringInfo buf, struct json_object *elem)
{
	const char *s;

	if (elem == NULL)
	{
		appendStringInfoString(buf, "NULL");
		return;
	}
	if (json_object_is_type(elem, json_type_object) ||
		json_object_is_type(elem, json_type_array))
		s = json_object_to_json_string_ext(elem, MARKETO_JSON_FLAGS);
	else
		s = json_object_get_string(elem);

	/* byte-wise escaping is safe: UTF-8 never has '"' or '\' in a sequence */
	appendStringInfoChar(buf, '"');
	for (; *s; s++)
	{
		if (*s == '"' || *s == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *s);
	}
	appendStringInfoChar(buf, '"');
}

/* A JSON array as a PostgreSQL array literal, in UTF-8. */
static char *
array_literal(struct json_object *array)
{
	StringInfoData buf;
	size_t		n = json_object_array_length(array);
	size_t		i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		append_array_element(&buf, json_object_array_get_idx(array, i));
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Array types.  A JSON array becomes a literal for the array's input
 * function; so does text holding a JSON array.  Other text is taken to be
 * an array literal already.
 */
static Datum
convert_array(MarketoConverter *cv, MarketoValue *v, bool *isnull)
{
	struct json_object *parsed = NULL;
	char	   *literal;
	const char *p;

	switch (v->kind)
	{
		case MKV_CONTAINER:
			if (!json_object_is_type(v->jso, json_type_array))
				conversion_error(cv, v, NULL);
			literal = array_literal(v->jso);
			break;

		case MKV_STRING:
		case MKV_TEXT:
			if (value_is_empty(v))
			{
				*isnull = true;
				return (Datum) 0;
			}
			for (p = value_raw(v); isspace((unsigned char) *p); p++)
				;
			if (*p == '[')
				parsed = json_tokener_parse(p);
			if (!json_object_is_type(parsed, json_type_array))
			{
				json_object_put(parsed);
				return call_input(cv, value_text(cv, v), value_text(cv, v));
			}
			literal = array_literal(parsed);
			json_object_put(parsed);
			break;

		default:
			conversion_error(cv, v, NULL);
	}
	return call_input(cv, to_server_encoding(cv, literal), value_text(cv, v));
}

/*
 * text-like and all other types: the value's text (containers as JSON, so a
 * text column of an array field shows the JSON) through the input function.
 */
static Datum
convert_plain(MarketoConverter *cv, MarketoValue *v)
{
	const char *s = value_text(cv, v);

	/* what textin would do, without the call */
	if (cv->typid == TEXTOID)
		return PointerGetDatum(cstring_to_text(s));
	return call_input(cv, s, s);
}

/* The one dispatch on the column's type. */
static Datum
convert_value(MarketoConverter *cv, MarketoValue *v, bool *isnull)
{
	*isnull = false;
	switch (cv->typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return convert_integer(cv, v, isnull);
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
			return convert_number(cv, v, isnull);
		case BOOLOID:
			return convert_bool(cv, v, isnull);
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
		case DATEOID:
			return convert_datetime(cv, v, isnull);
		case JSONOID:
		case JSONBOID:
			return convert_json(cv, v);
		default:
			/* recognised by input function to avoid a catalog lookup */
			if (cv->input.fn_oid == F_ARRAY_IN)
				return convert_array(cv, v, isnull);
			return convert_plain(cv, v);
	}
}

/* ----------------------------------------------------------------
 * Entry points
 * ----------------------------------------------------------------
 */

void
marketo_converter_init(MarketoConverter *cv, Oid typid, int32 typmod,
					   const char *colname, const char *field)
{
	Oid			infunc;

	cv->typid = typid;
	cv->typmod = typmod;
	cv->colname = colname;
	cv->field = field ? field : colname;
	getTypeInputInfo(typid, &infunc, &cv->ioparam);
	fmgr_info_cxt(infunc, &cv->input, CurrentMemoryContext);
}

Datum
marketo_json_to_datum(MarketoConverter *cv, struct json_object *value,
					  bool *isnull)
{
	MarketoValue v = {0};

	v.jso = value;
	switch (json_object_get_type(value))
	{
		case json_type_null:	/* json-c's null is a NULL pointer */
			*isnull = true;
			return (Datum) 0;
		case json_type_boolean:
			v.kind = MKV_BOOL;
			break;
		case json_type_int:
			v.kind = MKV_INT;

			/*
			 * json-c saturates integers beyond 64 bits, so these two values
			 * may stand for others; refuse rather than return a wrong one.
			 */
			if (json_object_get_int64(value) == PG_INT64_MIN ||
				json_object_get_uint64(value) == PG_UINT64_MAX)
				conversion_error(cv, &v,
								 _("The number may be outside the 64-bit range that the JSON parser keeps exactly."));
			break;
		case json_type_double:
			v.kind = MKV_DOUBLE;
			break;
		case json_type_string:
			v.kind = MKV_STRING;
			v.raw = json_object_get_string(value);
			break;
		case json_type_object:
		case json_type_array:
			v.kind = MKV_CONTAINER;
			break;
	}
	return convert_value(cv, &v, isnull);
}

Datum
marketo_text_to_datum(MarketoConverter *cv, const char *text, bool *isnull)
{
	MarketoValue v = {0};

	if (text == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	v.kind = MKV_TEXT;
	v.raw = text;
	return convert_value(cv, &v, isnull);
}

/*
 * The member of an object named by key[0..len): exactly if present, else
 * case-insensitively, because columns are matched to fields that way.
 */
static struct json_object *
object_get(struct json_object *obj, const char *key, size_t len)
{
	struct json_object *value;
	struct json_object_iterator it;
	struct json_object_iterator end;
	char		stackbuf[NAMEDATALEN * 2];
	bool		found;

	if (!json_object_is_type(obj, json_type_object))
		return NULL;

	/* json-c wants a terminated key; path segments are not */
	if (key[len] == '\0')
		found = json_object_object_get_ex(obj, key, &value);
	else if (len < sizeof(stackbuf))
	{
		memcpy(stackbuf, key, len);
		stackbuf[len] = '\0';
		found = json_object_object_get_ex(obj, stackbuf, &value);
	}
	else
	{
		char	   *copy = pnstrdup(key, len);

		found = json_object_object_get_ex(obj, copy, &value);
		pfree(copy);
	}
	if (found)
		return value;			/* may be NULL: a JSON null */

	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
	{
		const char *name = json_object_iter_peek_name(&it);

		if (pg_strncasecmp(name, key, len) == 0 && name[len] == '\0')
			return json_object_iter_peek_value(&it);
	}
	return NULL;
}

struct json_object *
marketo_json_get_path(struct json_object *record, const char *path)
{
	const char *dot;

	while ((dot = strchr(path, '.')) != NULL)
	{
		record = object_get(record, path, dot - path);
		if (record == NULL)
			return NULL;
		path = dot + 1;
	}
	return object_get(record, path, strlen(path));
}

/* ----------------------------------------------------------------
 * Datums to Marketo's text (filterValues)
 * ----------------------------------------------------------------
 */

/* A timestamp as ISO-8601 UTC without fraction, which Marketo filters want */
static char *
timestamp_to_marketo(Timestamp ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) ||
		timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0 ||
		tm.tm_year < 1 || tm.tm_year > 9999)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range for Marketo")));
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static char *
date_to_marketo(DateADT date)
{
	int			year,
				month,
				day;

	if (DATE_NOT_FINITE(date))
		year = 0;
	else
		j2date(date + POSTGRES_EPOCH_JDATE, &year, &month, &day);
	if (year < 1 || year > 9999)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("date out of range for Marketo")));
	return psprintf("%04d-%02d-%02d", year, month, day);
}

/* bpchar without its padding, which Marketo's values don't have */
static char *
bpchar_to_marketo(Datum value)
{
	char	   *s = TextDatumGetCString(value);
	int			len = strlen(s);

	while (len > 0 && s[len - 1] == ' ')
		len--;
	s[len] = '\0';
	return s;
}

/*
 * The text Marketo expects for a value: filter values are compared as
 * text there, so booleans are true/false and timestamps UTC with "Z".  A
 * timestamp without zone holds UTC wall time (see convert_datetime).
 * Called per filter value, not per row, so looking up the base type and
 * the output function is fine.
 */
char *
marketo_datum_to_text(Datum value, Oid typid)
{
	Oid			basetype = getBaseType(typid);
	char	   *s;
	Oid			outfunc;
	bool		isvarlena;

	switch (basetype)
	{
		case INT2OID:
			return psprintf("%d", (int) DatumGetInt16(value));
		case INT4OID:
			return psprintf("%d", DatumGetInt32(value));
		case INT8OID:
			return psprintf(INT64_FORMAT, DatumGetInt64(value));
		case BOOLOID:
			return pstrdup(DatumGetBool(value) ? "true" : "false");
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
			return timestamp_to_marketo(DatumGetTimestamp(value));
		case DATEOID:
			return date_to_marketo(DatumGetDateADT(value));
		case TEXTOID:
		case VARCHAROID:
			s = TextDatumGetCString(value);
			break;
		case BPCHAROID:
			s = bpchar_to_marketo(value);
			break;
		case NAMEOID:
			s = pstrdup(NameStr(*DatumGetName(value)));
			break;
		default:
			getTypeOutputInfo(basetype, &outfunc, &isvarlena);
			s = OidOutputFunctionCall(outfunc, value);
			break;
	}
	/* Marketo speaks UTF-8 */
	return pg_server_to_any(s, strlen(s), PG_UTF8);
}
