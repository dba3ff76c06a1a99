# Without shared_preload_libraries there is no governor: the first API
# call fails with a clear error and a hint, and nothing reaches Marketo.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketoTest;

my $mock = start_mock();
my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;
create_fdw_objects($node, $mock);

my ($ret, $out, $err) = $node->psql('postgres', "SELECT email FROM leads WHERE id = 1");
isnt($ret, 0, 'a lookup fails');
like($err, qr/marketo_fdw must be loaded via shared_preload_libraries/, 'saying why');
like($err, qr/HINT:  Add marketo_fdw to shared_preload_libraries/, 'and how to fix it');
is(scalar(@{ $mock->calls }), 0, 'no call reached Marketo');
is($mock->summary->{identity_calls}, 0, 'not even for a token');

($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM marketo_fdw_status()");
like($err, qr/shared_preload_libraries/, 'marketo_fdw_status says the same');

$node->stop;
$mock->stop;
done_testing();
