// Package backup writes, verifies, prunes and restores postfach backups
// (docs/backup.md). It reads a store through store.Snapshotter and
// writes one through store.Restorer, so its format is the same for every
// backend.
//
// # Format
//
// A backup root (the DEST of `postfach backup DEST`) holds the backups
// taken into it and the bodies they share:
//
//	DEST/
//	  .lock                      taken by a backup and a prune
//	  blobs/<sha256>             message bodies, named by their SHA-256
//	  postfach-20250102T030405Z/ one backup
//	    manifest.json            what the backup holds (Manifest)
//	    accounts.jsonl           one JSON record per line, one file per kind
//	    mailboxes.jsonl
//	    ...
//
// A body is written once, by the first backup that needs it; later
// backups into the same root only list it (incremental), and each backup
// restores on its own. Prune removes a body only when no backup left in
// the root lists it. A backup is written in a directory whose name starts
// with "." and renamed into place once its manifest is durable, so a
// backup that did not finish is never taken for one that did.
//
// The manifest carries the format's version and, per kind, the file, the
// number of records and the SHA-256 of the file: `postfach backup verify`
// checks them, every record, every reference between records, and every
// body's hash. A reader refuses a manifest of a newer version, and a kind
// it does not know (a newer postfach's, such as the outbound queue): it
// would lose what that kind holds. New kinds are added without a new
// version; a change of an existing kind's records needs one.
//
// Every file is created with mode 0600 and every directory 0700: a backup
// holds password hashes, SCRAM keys and all mail.
package backup
