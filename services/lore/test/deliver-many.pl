#!/usr/bin/perl
# Test helper: delivers many messages into one public-inbox in one process
# (public-inbox-mda costs about a second per message). Reads an mboxrd on
# standard input; the inbox is the one whose address is ORIGINAL_RECIPIENT.
# Each message goes through what public-inbox-mda does after its spam check:
# the list headers, then the inbox's importer; one commit at the end.
use strict;
use warnings;
use PublicInbox::Config;
use PublicInbox::Eml;
use PublicInbox::InboxWritable;
use PublicInbox::MDA;

my $cfg = PublicInbox::Config->new;
my $ibx = $cfg->lookup($ENV{ORIGINAL_RECIPIENT}) or die "no inbox for $ENV{ORIGINAL_RECIPIENT}\n";
$ibx = PublicInbox::InboxWritable->new($ibx);
my $im = $ibx->importer(0);
my $data = do { local $/; <STDIN> };
my $n = 0;
for my $msg (split(/^From [^\n]*\n/m, $data)) {
	next if $msg eq '';
	$msg =~ s/\n\z//; # the blank line that ends each mbox message
	$msg =~ s/^>(>*From )/$1/gm;
	my $eml = PublicInbox::Eml->new(\$msg);
	PublicInbox::MDA->set_list_headers($eml, $ibx);
	$n++ if defined $im->add($eml);
}
$im->done;
print "$n\n";
