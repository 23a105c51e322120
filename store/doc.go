// Package store is the SQLite audit store of MCP Mediator: schema and
// migrations, the batched writer, the tamper-evident audit chain, and the
// queries that read it back (Verify, Export, Records, SessionRecords,
// TaskRecords, Sessions). It is the only package that imports the SQLite
// driver (modernc.org/sqlite, pure Go). It also keeps what every mediator process sharing the database must see:
// revocations, settings, approvals and tasks (stored intents).
//
// # Writing
//
// Store implements mediator.Recorder. Record redacts a record, caps its
// arguments and result, and hands it to the writer, which owns every write
// to the chain. The writer drains up to the batch size of queued
// records, opens a BEGIN IMMEDIATE transaction, reads the head of the chain
// inside it, links and hashes the records in order, inserts them and
// commits; then it answers every waiting Record call. A Record call that
// finds the writer idle and few other calls running commits its own record
// in its own goroutine (one agent, one call at a time: no hand-over); with
// many calls running (mediator.CallTracker), the writer goroutine waits a
// moment for their records and commits them together (group commit). Reading the head
// inside an immediate transaction means several processes (stdio mediator
// instances beside a serve) can share one database file and still append
// to a single chain. Each Record returns only after its transaction has
// committed, and every error it returns wraps mediator.ErrAudit: the
// pipeline must not release a result whose record failed. Healthy reports
// whether the last batch failed, so the pipeline can refuse calls up front.
//
// # Redaction and caps
//
// Before a record is stored, secrets are replaced with "[REDACTED]":
// values of JSON object members whose key names a secret (password,
// secret, token, api_key, authorization, ...), recursively, and matches
// of the built-in patterns (sk-..., ghp_..., AKIA..., xoxb-..., Bearer
// tokens, JWTs, key=value pairs, URL passwords, PEM private keys) plus any
// given with WithRedactPatterns, in every string of Arguments and Result
// and in Name, Prompt, Reasoning, Error, the decision's Reason, Intent and
// Approval. Arguments and
// Result are stored as canonical JSON (see CanonicalJSON); one larger than
// its cap is stored as a JSON string holding a prefix of its text, and the
// record is marked Truncated. Text that is not JSON is stored as a JSON
// string. The other text fields are capped too — identifiers such as Name
// (which an agent chooses when it asks for a tool that does not exist),
// Method and SessionID at 1 KiB, Error and the decision's Reason at 4 KiB —
// cut at a character boundary and ending in "…", and the record is marked
// Truncated. Prompt and Reasoning are stored as given, after redaction: the
// pipeline caps them and sets PromptTruncated.
//
// # Chain format
//
// Records are numbered by seq: 1, 2, 3, ... with no gaps. Each record
// stores prev_hash, the hash of the record before it (64 zeros for seq 1),
// and hash:
//
//	hash = lower-case hex( SHA-256( prev_hash || canonical ) )
//
// where prev_hash is its 64 ASCII hex characters and canonical is one JSON
// object holding every other column of the record, keys in byte order, no
// whitespace:
//
//	{"agent_id":S,"approval":J?,"arguments":J,"behaviour":J?,"decision_effect":S,
//	 "decision_policy_version":S,"decision_reason":S,"decision_rule":S,
//	 "decision_shadow":B,"duration_us":N,"error":S,"id":S,"intent":J,"kind":S,
//	 "method":S,"name":S,"outcome":S,"prompt":S,"prompt_truncated":true?,
//	 "reasoning":S?,"ref":S?,"remote_addr":S?,"result":J,"scan":J?,"seq":N,"server":S,
//	 "session_id":S,"task_id":S,"time":S,"tool_hash":S,"transport":S,"truncated":B,
//	 "upstream_us":N,"writer":S?}
//
// (shown on several lines here, one line in fact). S is a string encoded
// as CanonicalJSON encodes strings, empty strings included, never omitted;
// N a base-10 integer; B true or false; J, for the JSON columns, null for
// SQL NULL, otherwise the column's stored text (canonical JSON) encoded as
// a string S, so that NULL and the text "null" differ.
//
// The three keys marked ? came with schema version 4 (the record's
// Approval, PromptTruncated and Reasoning) and are written only when not
// empty, so that a record that does not use them, and every record stored
// before them, hashes exactly as it did: "approval" (J, the canonical JSON
// of a mediator.ApprovalRef) only when the column is not NULL;
// "prompt_truncated" only when it is true, and then as true;
// "reasoning" (S) only when it is not the empty string. "remote_addr"
// (S, the client IP address of a request over HTTP) came with schema
// version 5 and is written likewise only when not empty. "behaviour" (J,
// the canonical JSON of a mediator.Behaviour: the call's deviation score,
// reasons and the trust it was decided at) came with schema version 6 and
// is written only when the column is not NULL. "ref" and "writer" (S, the
// write-ahead link and the process that wrote a forwarding record) came
// with schema version 7 and are written only when not empty. "scan" (J, the
// canonical JSON of a mediator.ScanReport: secrets found in the arguments
// and result, injection markers, and what was done) came with schema
// version 9 and is written only when the column is not NULL. Every other
// key is always present.
//
// time is the stored text: RFC 3339 in UTC with exactly nine fractional
// digits, e.g. "2025-01-02T03:04:05.000000006Z" (it parses as
// time.RFC3339Nano). The object is itself canonical: CanonicalJSON leaves
// it unchanged.
//
// Because seq and prev_hash are hashed, editing any field, deleting or
// reordering records, or editing a hash breaks the chain at that record,
// and Verify names it. SQLite triggers also refuse UPDATE and DELETE on the
// audit table; tampering therefore needs the triggers dropped first, which
// Verify still detects in the data. Removing records from the end of the
// chain cannot be detected from the chain alone: keep VerifyResult.LastSeq
// and LastHash (or an Export) elsewhere to anchor it.
//
// # Durability
//
// The database runs in WAL mode with busy_timeout. With the default
// synchronous=NORMAL, a record whose Record call returned nil is in the
// WAL and survives a crash or kill -9 of the process; a power loss or OS
// crash may lose the last transactions. WithSynchronousFull syncs the WAL
// on every commit, so acknowledged records also survive a power loss, at
// some cost in latency.
//
// # Schema
//
// The schema is versioned in the schema_migrations table by an ordered
// list of migrations, each applied in its own transaction when the store
// opens. Opening a database migrated by a newer build fails with
// ErrSchemaTooNew.
package store
