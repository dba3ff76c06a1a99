# Many lookups and many failed calls in one backend: its memory stays
# flat, so pages are freed when done and nothing (json-c trees, curl
# lists) is left behind on ERROR.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use MarketoTest;

my $mock = start_mock(rate_window => 0.2, rate_limit => 100);
my $node = new_cluster('memory', "marketo_fdw.rate_window = '200ms'\n");
create_fdw_objects($node, $mock, rate_limit => 100, max_concurrency => 5);

# Lookups of 300 ids; every other one answered with broken JSON, caught.
my $round = q{
DO $$
DECLARE n bigint;
BEGIN
  FOR i IN 1..ROUNDS LOOP
    BEGIN
      SELECT count(*) INTO n FROM leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 300)));
      IF n <> 300 THEN RAISE EXCEPTION 'got % leads', n; END IF;
    EXCEPTION WHEN fdw_error OR fdw_unable_to_establish_connection THEN NULL;
    END;
  END LOOP;
END $$;
};
my $rss = q{SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmRSS:\s+(\d+)'))[1]::int};
my $contexts = q{SELECT sum(total_bytes) FROM pg_backend_memory_contexts};

my $session = $node->background_psql('postgres');
$session->query_safe($round =~ s/ROUNDS/20/r);	# warm up: caches, token, curl handle
my $rss_before = $session->query_safe($rss);
my $cxt_before = $session->query_safe($contexts);

$mock->fault(kind => 'malformed', count => 100, after => 0);
$mock->fault(kind => 'truncated', count => 50, after => 0);
$session->query_safe($round =~ s/ROUNDS/300/r);
my $rss_after = $session->query_safe($rss);
my $cxt_after = $session->query_safe($contexts);
$session->quit;

my $s = $mock->summary;
cmp_ok($s->{faults_fired}{malformed} // 0, '==', 100, 'a hundred calls failed on broken JSON');
note "RSS $rss_before kB -> $rss_after kB; memory contexts $cxt_before -> $cxt_after bytes";
cmp_ok($rss_after - $rss_before, '<', 4096, 'RSS grew less than 4 MB over 300 lookups and 150 failures');
cmp_ok($cxt_after - $cxt_before, '<', 256 * 1024, 'memory contexts did not grow');

$node->stop;
$mock->stop;
done_testing();
