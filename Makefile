# marketo_fdw: PGXS build
MODULE_big = marketo_fdw
OBJS = \
	src/marketo_fdw.o \
	src/options.o \
	src/objects.o \
	src/plan.o \
	src/scan.o \
	src/http.o \
	src/token.o \
	src/transport.o \
	src/errors.o \
	src/governor.o \
	src/governor_day.o \
	src/governor_file.o \
	src/governor_status.o \
	src/governor_token.o \
	src/progress.o \
	src/convert.o \
	src/describe.o \
	src/import.o

EXTENSION = marketo_fdw
DATA = sql/marketo_fdw--1.0.sql
PGFILEDESC = "marketo_fdw - foreign data wrapper for Marketo"

PG_CPPFLAGS = -I$(srcdir)/src $(shell pkg-config --cflags libcurl json-c)
PG_CFLAGS = -Wall -Werror
SHLIB_LINK = $(shell pkg-config --libs libcurl json-c)

# pg_regress: a temporary instance that preloads the library (the governor
# lives in shared memory); the mock Marketo must already be running and its
# URL exported as MARKETO_MOCK_URL (test/run-tests does both).
REGRESS = setup options leads_lookup leads_paging import leads_errors
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=$(srcdir)/test/regress.conf \
	--load-extension=marketo_fdw


PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
