package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/postfach/postfach/internal/mail"
)

// migrations are applied in order; migrations[i] brings the schema from
// version i to i+1. Never edit a released migration: append a new one.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE accounts (
	id            INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
	name          TEXT NOT NULL,
	name_key      TEXT NOT NULL UNIQUE, -- lower-case name
	password_hash TEXT NOT NULL,
	settings      TEXT NOT NULL DEFAULT '{}', -- JSON object
	created       INTEGER NOT NULL
);

CREATE TABLE mailboxes (
	id             INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: tombstones keep it
	account_id     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name           TEXT NOT NULL,
	special_use    TEXT NOT NULL DEFAULT '', -- space-separated attributes
	noselect       INTEGER NOT NULL DEFAULT 0,
	uidvalidity    INTEGER NOT NULL,
	uidnext        INTEGER NOT NULL DEFAULT 1,
	highestmodseq  INTEGER NOT NULL DEFAULT 1,
	first_recent   INTEGER NOT NULL DEFAULT 1,
	vanished_floor INTEGER NOT NULL DEFAULT 0, -- tombstones at or below were pruned
	msg_count      INTEGER NOT NULL DEFAULT 0,
	unseen_count   INTEGER NOT NULL DEFAULT 0,
	deleted_count  INTEGER NOT NULL DEFAULT 0,
	total_size     INTEGER NOT NULL DEFAULT 0,
	UNIQUE (account_id, name)
);

CREATE TABLE subscriptions (
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

-- Bodies: inline data for small ones, else a file in the blob store named
-- by the hash. Rows are keyed by an integer so that a delivery appends to
-- the tables' last pages instead of dirtying a random index page per
-- message; only file bodies are deduplicated (by hash), since inline ones
-- almost never repeat (each carries its own Received: header).
CREATE TABLE blobs (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	hash    TEXT NOT NULL,    -- hex SHA-256 of the body
	size    INTEGER NOT NULL,
	data    BLOB,             -- NULL: the body is in the blob store
	summary BLOB NOT NULL,    -- message.Summary, binary encoded
	created INTEGER NOT NULL
);
CREATE UNIQUE INDEX blobs_file ON blobs (hash) WHERE data IS NULL;

CREATE TABLE messages (
	mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           INTEGER NOT NULL,
	modseq        INTEGER NOT NULL,
	flags         INTEGER NOT NULL, -- system flag bits, mail.Flags.Bits
	keywords      TEXT NOT NULL DEFAULT '', -- space-separated
	internal_date INTEGER NOT NULL, -- unix seconds
	internal_tz   INTEGER NOT NULL, -- zone offset in seconds
	save_date     INTEGER NOT NULL,
	size          INTEGER NOT NULL,
	blob_id       INTEGER NOT NULL, -- blobs.id
	email_id      TEXT NOT NULL,
	pop_uid       TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_blob ON messages (blob_id);

-- Expunged messages: tombstones for QRESYNC and, for the retention window,
-- everything needed to recover them.
CREATE TABLE expunged (
	mailbox_id    INTEGER NOT NULL,
	uid           INTEGER NOT NULL,
	modseq        INTEGER NOT NULL, -- MODSEQ of the expunge
	expunged_at   INTEGER NOT NULL,
	account_id    INTEGER NOT NULL,
	mailbox_name  TEXT NOT NULL,
	flags         INTEGER NOT NULL,
	keywords      TEXT NOT NULL,
	internal_date INTEGER NOT NULL,
	internal_tz   INTEGER NOT NULL,
	size          INTEGER NOT NULL,
	blob_id       INTEGER NOT NULL, -- blobs.id
	email_id      TEXT NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);
CREATE INDEX expunged_blob ON expunged (blob_id);
CREATE INDEX expunged_at ON expunged (expunged_at);

-- POP3 views: per device (or "" for the plain maildrop), the UIDs it no
-- longer offers, as a compact UID set string.
CREATE TABLE pop3_views (
	account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	device      TEXT NOT NULL,
	mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uidvalidity INTEGER NOT NULL,
	hidden      TEXT NOT NULL DEFAULT '',
	created     INTEGER NOT NULL,
	last_used   INTEGER NOT NULL,
	PRIMARY KEY (account_id, device, mailbox_id)
) WITHOUT ROWID;
`,
	// 2: METADATA (RFC 5464) annotations.
	`
CREATE TABLE metadata (
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	mailbox_id INTEGER NOT NULL, -- 0: the server
	name       TEXT NOT NULL,
	value      BLOB NOT NULL,
	PRIMARY KEY (account_id, mailbox_id, name)
) WITHOUT ROWID;
`,
	// 3: the inline body becomes the last column of blobs. SQLite keeps a
	// row's columns in order and a large value spills into a chain of
	// overflow pages; a column after it can only be reached by walking
	// that chain, so every FETCH of ENVELOPE or BODYSTRUCTURE read the
	// whole inline body to get at the summary behind it. The rows are
	// copied once, with their ids and the AUTOINCREMENT counter.
	`
CREATE TABLE blobs_new (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	hash    TEXT NOT NULL,    -- hex SHA-256 of the body
	size    INTEGER NOT NULL,
	summary BLOB NOT NULL,    -- message.Summary, binary encoded
	created INTEGER NOT NULL,
	data    BLOB              -- NULL: the body is in the blob store; last, see above
);
INSERT INTO blobs_new (id, hash, size, summary, created, data)
	SELECT id, hash, size, summary, created, data FROM blobs ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'blobs_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'blobs_new', seq FROM sqlite_sequence WHERE name = 'blobs';
DROP TABLE blobs;
ALTER TABLE blobs_new RENAME TO blobs;
CREATE UNIQUE INDEX blobs_file ON blobs (hash) WHERE data IS NULL;
`,
	// 4: for a body kept in a file, where its lines that begin with "."
	// are (store.DotScanner's encoding; NULL when unknown: rows from
	// before this version, inline bodies, or too many such lines). POP3
	// then sends the file with sendfile(2), adding the stuffing dots
	// between the pieces, without reading it. Records written later also
	// say whether the body holds a NUL byte (store.DecodeScan); IMAP
	// then sends the file with sendfile(2) only when it holds none. The
	// column comes after data but is read only for file bodies, whose
	// data is NULL, so no overflow chain stands in front of it.
	`
ALTER TABLE blobs ADD COLUMN dots BLOB;
`,
	// Devices (store.Credentials, issue 14): clients of an account with
	// passwords of their own, named like the POP3 views; and the SCRAM
	// keys of account passwords, each bound to the password hash it was
	// made for, so that a new password voids them without touching the
	// accounts table. IF NOT EXISTS: a test that winds the schema
	// version back (TestMigrateBlobColumns) runs this again.
	`
CREATE TABLE IF NOT EXISTS devices (
	account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name          TEXT NOT NULL, -- lower case
	password_hash TEXT NOT NULL DEFAULT '', -- '': none
	scram         TEXT NOT NULL DEFAULT '',
	created       INTEGER NOT NULL,
	revoked       INTEGER NOT NULL DEFAULT 0, -- unix seconds; 0: not revoked
	last_login    INTEGER NOT NULL DEFAULT 0,
	last_remote   TEXT NOT NULL DEFAULT '',
	last_proto    TEXT NOT NULL DEFAULT '',
	last_client   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS account_scram (
	account_id    INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
	password_hash TEXT NOT NULL, -- the accounts.password_hash the keys belong to
	scram         TEXT NOT NULL
);
`,
	// Quotas (RFC 9208, store/quota.go). Each account keeps what its
	// messages take (bytes and count; expunged messages do not count) as
	// counters that every write updates with the change, and its own
	// limits (NULL: the default of the config applies). Each mailbox
	// keeps the size of its messages with \Deleted, for STATUS
	// DELETED-STORAGE. The counters start from the messages stored.
	`
ALTER TABLE accounts ADD COLUMN used_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN used_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN quota_bytes INTEGER;
ALTER TABLE accounts ADD COLUMN quota_messages INTEGER;
ALTER TABLE mailboxes ADD COLUMN deleted_size INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET
	used_bytes = (SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.account_id = accounts.id),
	used_messages = (SELECT count(*) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.account_id = accounts.id);
UPDATE mailboxes SET deleted_size = (SELECT coalesce(sum(m.size), 0) FROM messages m
	WHERE m.mailbox_id = mailboxes.id AND (m.flags & ` + deletedBit + `) != 0);
`,
	// Device setup links (store.SetupLinks, issue 14): the SHA-256 of each
	// link's token, never the token, and the device's password sealed
	// under a key derived from the token; sealed is NULL once the link is
	// used or has expired. IF NOT EXISTS: see the devices migration.
	`
CREATE TABLE IF NOT EXISTS setup_links (
	id         BLOB PRIMARY KEY, -- SHA-256 of the token
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	device     TEXT NOT NULL, -- lower case
	sealed     BLOB,          -- the password, encrypted; NULL: used or expired
	created    INTEGER NOT NULL, -- unix seconds
	expires    INTEGER NOT NULL,
	used       INTEGER NOT NULL DEFAULT 0 -- unix seconds; 0: not used
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS setup_links_device ON setup_links (account_id, device);
CREATE INDEX IF NOT EXISTS setup_links_expires ON setup_links (expires);
`,
	// Aliases (store.Aliases, issue 15): one row per account an alias
	// delivers to; the alias exists while it has one, so deleting an
	// account takes it out of every alias (ON DELETE CASCADE). address is
	// the alias as created ("@example.org" for a catch-all), address_key
	// its lookup key (mail.NameKey). IF NOT EXISTS: see the devices
	// migration.
	`
CREATE TABLE IF NOT EXISTS aliases (
	address_key TEXT NOT NULL,
	address     TEXT NOT NULL,
	account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	created     INTEGER NOT NULL, -- unix seconds
	PRIMARY KEY (address_key, account_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aliases_account ON aliases (account_id);
`,
	// Mailbox access keys for URLAUTH (store.AccessKeys, RFC 4467 §2.2,
	// issue 15): one random key per mailbox, made when a URL of it is
	// first signed. Keyed by the mailbox's id, never reused, so the key
	// goes with the mailbox and no later mailbox of the name inherits
	// it. IF NOT EXISTS: see the devices migration.
	`
CREATE TABLE IF NOT EXISTS access_keys (
	mailbox_id INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	key        BLOB NOT NULL,
	created    INTEGER NOT NULL -- unix seconds
);
CREATE INDEX IF NOT EXISTS access_keys_account ON access_keys (account_id);
`,
	// The outbound queue (store.Queue, issue 15): one row per message,
	// one per recipient. blob_id is the body's blobs row, kept by the
	// sweep while an entry refers to it; account_id is not a foreign key,
	// since a queued message still goes out after its account is deleted
	// (only its DSN has nowhere to go). Times in unix milliseconds. IF
	// NOT EXISTS: see the devices migration.
	`
CREATE TABLE IF NOT EXISTS queue (
	id             INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
	account_id     INTEGER NOT NULL, -- 0: the server's own mail (a DSN)
	sender         TEXT NOT NULL,    -- the reverse-path; '' is the null sender
	smtputf8       INTEGER NOT NULL DEFAULT 0,
	eightbit       INTEGER NOT NULL DEFAULT 0,
	blob_id        INTEGER NOT NULL, -- blobs.id
	size           INTEGER NOT NULL,
	created        INTEGER NOT NULL,
	next_attempt   INTEGER NOT NULL,
	leased_until   INTEGER NOT NULL DEFAULT 0,
	attempts       INTEGER NOT NULL DEFAULT 0,
	last_error     TEXT NOT NULL DEFAULT '',
	delay_notified INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_due ON queue (next_attempt);
CREATE INDEX IF NOT EXISTS queue_blob ON queue (blob_id);
CREATE TABLE IF NOT EXISTS queue_rcpts (
	queue_id   INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
	idx        INTEGER NOT NULL, -- position among the entry's recipients
	address    TEXT NOT NULL,
	state      INTEGER NOT NULL DEFAULT 0, -- store.RecipientState
	status     TEXT NOT NULL DEFAULT '',
	diagnostic TEXT NOT NULL DEFAULT '',
	remote     TEXT NOT NULL DEFAULT '',
	dsn_done   INTEGER NOT NULL DEFAULT 0,
	updated    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (queue_id, idx)
) WITHOUT ROWID;
`,
	// DKIM signing keys (store.DKIMKeys, RFC 6376, issue 15): one row per
	// domain and selector; private_key is PKCS #8 DER, a secret. IF NOT
	// EXISTS: see the devices migration.
	`
CREATE TABLE IF NOT EXISTS dkim_keys (
	domain      TEXT NOT NULL, -- lower case
	selector    TEXT NOT NULL,
	algorithm   TEXT NOT NULL, -- rsa, ed25519
	private_key BLOB NOT NULL,
	created     INTEGER NOT NULL, -- unix seconds
	PRIMARY KEY (domain, selector)
) WITHOUT ROWID;
`,
	// MTA-STS policies of receiving domains (store.STSPolicies, RFC 8461
	// §5.1, issue 15): one row per domain, kept until max_age so that a
	// restart does not forget them. mx holds the patterns one per line;
	// expires is in unix milliseconds. IF NOT EXISTS: see the devices
	// migration.
	`
CREATE TABLE IF NOT EXISTS sts_policies (
	domain  TEXT PRIMARY KEY, -- lower case
	id      TEXT NOT NULL,
	mode    TEXT NOT NULL,
	mx      TEXT NOT NULL,
	expires INTEGER NOT NULL
) WITHOUT ROWID;
`,
}

// deletedBit is the bit of \Deleted in messages.flags (mail.Flags.Bits),
// for migrations.
var deletedBit = strconv.Itoa(int(mail.Bit(mail.FlagDeleted)))

// migrate brings the schema to the newest version in one transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback()
	version := 0
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'`).Scan(&exists); err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	if exists > 0 {
		var v string
		if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key='schema_version'`).Scan(&v); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if version, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("bad schema version %q", v)
		}
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this postfach (%d): upgrade postfach", version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('schema_version', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.Itoa(len(migrations))); err != nil {
		return fmt.Errorf("record schema version: %w", err)
	}
	return tx.Commit()
}
