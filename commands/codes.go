package commands

import "strings"

// backupCodesBlock is the one table-mode layout of newly issued backup
// codes, in enroll and in backup-codes: a sentence ending in a colon, then
// one code a line, indented two spaces, so that selecting a line copies
// exactly one code. lead must already be terminal-safe.
func backupCodesBlock(lead string, codes []string) string {
	return lead + ":\n  " + strings.Join(codes, "\n  ") + "\n"
}
