// Package mail holds the small domain types every other package shares:
// UIDs, MODSEQs, UID sets, flags and addresses. It imports nothing of the
// project, so protocol servers and store backends can both depend on it.
package mail
