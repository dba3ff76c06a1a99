# The daily quota: a clear error with the reset time at the cap, a count
# that survives a clean restart, and Marketo's own 607 stopping everyone.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use MarketoTest;

my $mock = start_mock(rate_window => 2);
my $node = new_cluster('quota');
create_fdw_objects($node, $mock, daily_quota => 5);

for my $id (1 .. 5)
{
	is($node->safe_psql('postgres', "SELECT email FROM leads WHERE id = $id"),
		"lead$id\@example.com", "lookup $id of 5 is allowed");
}
my ($ret, $out, $err) = $node->psql('postgres', "SELECT email FROM leads WHERE id = 6");
isnt($ret, 0, 'the sixth call is refused');
like($err, qr/daily API quota .* is used up/, 'with a clear error');
like($err, qr/5 of 5 calls used today/, 'saying how many calls were used');
like($err, qr/resets at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, 'and when the quota resets');
is($mock->summary->{counted}, 5, 'Marketo saw exactly five calls');

is($node->safe_psql('postgres',
	"SELECT calls_today, daily_quota, quota_resets_at > now() FROM marketo_fdw_status()"),
	'5|5|t', 'marketo_fdw_status shows the quota used up');

# the reset is the next midnight in Chicago, daylight saving included
is($node->safe_psql('postgres', q{
	SELECT quota_resets_at = (date_trunc('day', now() AT TIME ZONE 'America/Chicago')
	                          + interval '1 day') AT TIME ZONE 'America/Chicago'
	  FROM marketo_fdw_status()}), 't', 'quota resets at midnight America/Chicago');

$node->restart;
is($node->safe_psql('postgres', "SELECT calls_today FROM marketo_fdw_status()"), '5',
	'the count survives a clean restart');
($ret, $out, $err) = $node->psql('postgres', "SELECT email FROM leads WHERE id = 6");
like($err, qr/is used up/, 'and the cap still holds after it');
is($mock->summary->{counted}, 5, 'still without a call to Marketo');

# Marketo's own 607 (other integrations share the quota) stops every backend
$node->safe_psql('postgres', "ALTER SERVER mkto OPTIONS (SET daily_quota '10000')");
$node->restart;
$mock->reset;
$mock->fault(kind => '607');
($ret, $out, $err) = $node->psql('postgres', "SELECT email FROM leads WHERE id = 7");
like($err, qr/quota/, '607 is a quota error');
like($err, qr/resets at/, 'with the reset time');
($ret, $out, $err) = $node->psql('postgres', "SELECT email FROM leads WHERE id = 8");
like($err, qr/quota/, 'another backend is stopped too');
is(scalar(@{ $mock->calls }), 1, 'without calling Marketo again');
is($node->safe_psql('postgres', "SELECT errors_607 FROM marketo_fdw_status()"), '1',
	'marketo_fdw_status counts the 607');

# the client secret and access tokens reach no log line of ours (the
# statement log of CREATE USER MAPPING is PostgreSQL's own)
my @leaks = grep { /mock-secret|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:ab/ && !/statement:|^\s/ }
  split /\n/, slurp_file($node->logfile);
is(scalar(@leaks), 0, 'no secret or token in the server log') or diag join("\n", @leaks);

$node->stop;
$mock->stop;
done_testing();
