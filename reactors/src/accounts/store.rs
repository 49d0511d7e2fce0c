//! The durable store: accounts, balances and settlement records in an embedded, crash-safe database (redb, with
//! an fsync at every commit). One thread owns the database; balance changes sent to it are applied in batches
//! (group commit) and each is acknowledged only after the batch that holds it is on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{AccountId, AccountSpec};

const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
const BALANCES: TableDefinition<&str, i128> = TableDefinition::new("balances");
const SETTLEMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("settlements");

/// The most commands applied in one transaction.
const MAX_BATCH: usize = 8192;

/// Why the store failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open the database {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Arc<redb::Error>,
    },
    /// A read or write failed.
    #[error("database: {0}")]
    Db(Arc<redb::Error>),
    /// A stored record could not be decoded (the file was changed by something else).
    #[error("database record {key:?} is corrupt: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A balance would leave the range a balance can hold.
    #[error("balance of {0} would overflow")]
    Overflow(AccountId),
    /// The store's thread has stopped.
    #[error("the store has stopped")]
    Stopped,
    /// The change was not written (its transaction failed, or the store closed first).
    #[error("the change was not written")]
    NotWritten,
}

fn db<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(Arc::new(e.into()))
}

/// Where an account came from: config.toml (it follows the file) or the admin API (it stays until deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountSource {
    /// `[[ilp.accounts]]` in config.toml.
    Config,
    /// `POST /accounts`.
    Api,
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAccount {
    /// Its specification.
    pub spec: AccountSpec,
    /// Where it came from.
    pub source: AccountSource,
}

/// What kind of settlement a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettlementKind {
    /// The balance crossed `settle_threshold`: we should pay `amount`.
    Needed,
    /// We paid them outside the network (balance goes up by `amount`).
    Outgoing,
    /// They paid us outside the network (balance goes down by `amount`).
    Incoming,
}

/// One settlement record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRecord {
    /// Sequence number, increasing.
    pub seq: u64,
    /// The account.
    pub account: AccountId,
    /// Needed, outgoing or incoming.
    pub kind: SettlementKind,
    /// The amount, in the account's units.
    #[serde(with = "as_string")]
    pub amount: u64,
    /// The balance after the record.
    #[serde(with = "as_string")]
    pub balance: i128,
    /// When (milliseconds since the Unix epoch).
    pub at_unix_ms: i64,
    /// Free text from whoever recorded it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Serialises integers as JSON strings (balances exceed what JavaScript numbers hold exactly).
pub mod as_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes the integer as a string.
    pub fn serialize<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// Reads a string (or a JSON integer) as the integer.
    pub fn deserialize<'de, T: std::str::FromStr, D: Deserializer<'de>>(d: D) -> Result<T, D::Error>
    where
        T::Err: std::fmt::Display,
    {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            S(String),
            N(serde_json::Number),
        }
        let text = match Either::deserialize(d)? {
            Either::S(s) => s,
            Either::N(n) => n.to_string(),
        };
        text.parse().map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
    }
}

/// Everything the store holds, read at start.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Accounts by ID.
    pub accounts: Vec<StoredAccount>,
    /// Balances by account ID (also of accounts that were removed: re-adding one restores its balance).
    pub balances: Vec<(AccountId, i128)>,
}

/// Per account, a change of balance. A forwarded payment changes two (the one it came from and the one it went
/// to): those are kept inline, with no allocation.
pub type Deltas = smallvec::SmallVec<[(AccountId, i128); 2]>;

/// One atomic balance change: applied whole or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceCommit {
    /// The ID the caller gives it (it comes back in [`Committed`]).
    pub id: u64,
    /// Per account, the change.
    pub deltas: Deltas,
}

/// The acknowledgement of one balance commit.
#[derive(Debug)]
pub struct Committed {
    /// The ID the caller gave the commit.
    pub id: u64,
    /// Durable, or why not.
    pub result: Result<(), StoreError>,
}

/// The answers owed for one batch of commits, sent together. Every commit is answered exactly once: if the answers
/// were not sent when this is dropped (a failed transaction that returned early, a close, a panic of the store
/// thread), each commit is answered [`StoreError::NotWritten`].
struct CommitReply {
    ids: Vec<u64>,
    reply: Option<mpsc::UnboundedSender<Vec<Committed>>>,
}

impl CommitReply {
    fn send(mut self, answers: Vec<Committed>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(answers);
        }
    }
}

impl Drop for CommitReply {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            let answers = self.ids.iter().map(|&id| Committed { id, result: Err(StoreError::NotWritten) }).collect();
            let _ = reply.send(answers);
        }
    }
}

enum Command {
    Commit { commits: Vec<BalanceCommit>, reply: CommitReply },
    PutAccount { account: StoredAccount, reply: oneshot::Sender<Result<(), StoreError>> },
    DeleteAccount { id: AccountId, reply: oneshot::Sender<Result<(), StoreError>> },
    Settle { record: SettlementRecord, delta: i128, reply: oneshot::Sender<Result<SettlementRecord, StoreError>> },
    Settlements { account: Option<AccountId>, reply: oneshot::Sender<Result<Vec<SettlementRecord>, StoreError>> },
    Snapshot { reply: oneshot::Sender<Result<Snapshot, StoreError>> },
    Close { reply: oneshot::Sender<()> },
}

/// A handle to the store's thread. Cloning is cheap; the thread stops when every handle is gone.
#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("store command")
    }
}

impl Store {
    /// Opens (or creates) the database at `path` and starts its thread. A new database is made whole beside `path`
    /// and moved there only once it is on disk: a node killed while creating it finds no half-made file.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |e: redb::Error| StoreError::Open { path: path.to_owned(), source: Arc::new(e) };
        // Nothing at the path, not even a link: made whole beside it (a link is followed by redb as before).
        let mut created = false;
        if let Err(e) = std::fs::symlink_metadata(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(open_err(e.into()));
            }
            let _ = ledgerwire_types::atomic_file::remove_leftovers(path);
            created = ledgerwire_types::atomic_file::create_atomic(path, 0o600, |tmp| -> Result<(), std::io::Error> {
                let database = Database::create(tmp).map_err(std::io::Error::other)?;
                create_tables(&database).map_err(std::io::Error::other)
            })
            .map_err(|e| open_err(e.into()))?;
        }
        let database = Database::create(path).map_err(|e| open_err(e.into()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        // Databases made by earlier versions get any table they lack, so that readers never meet a missing one.
        if !created {
            create_tables(&database).map_err(|e| open_err(*e))?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("ledgerwire-store".into())
            .spawn(move || run(database, rx))
            .map_err(|e| open_err(redb::Error::Io(e)))?;
        Ok(Store { tx })
    }

    /// Applies each commit atomically (one that would overflow a balance fails alone, writing nothing); `reply`
    /// gets one [`Committed`] per commit, in order, in one message, once they are on disk (or failed). Commits sent
    /// close together are written in one transaction; a caller that sends many at once pays for one message each
    /// way.
    pub fn commit(&self, commits: Vec<BalanceCommit>, reply: &mpsc::UnboundedSender<Vec<Committed>>) {
        if commits.is_empty() {
            return;
        }
        let ids = commits.iter().map(|c| c.id).collect();
        // If the thread is gone, the command (and its reply) is dropped here: the caller hears NotWritten.
        let _ = self.tx.send(Command::Commit { commits, reply: CommitReply { ids, reply: Some(reply.clone()) } });
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).map_err(|_| StoreError::Stopped)?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// Everything stored.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.ask(|reply| Command::Snapshot { reply }).await
    }

    /// Adds or replaces an account.
    pub async fn put_account(&self, account: StoredAccount) -> Result<(), StoreError> {
        self.ask(|reply| Command::PutAccount { account, reply }).await
    }

    /// Removes an account (its balance stays, and comes back if the account is added again).
    pub async fn delete_account(&self, id: AccountId) -> Result<(), StoreError> {
        self.ask(|reply| Command::DeleteAccount { id, reply }).await
    }

    /// Records a settlement and applies `delta` to the balance in the same transaction; returns the record with
    /// its sequence number and the balance after it.
    pub async fn settle(&self, record: SettlementRecord, delta: i128) -> Result<SettlementRecord, StoreError> {
        self.ask(|reply| Command::Settle { record, delta, reply }).await
    }

    /// Finishes what was sent before, closes the database and returns once the file is released (so it can be
    /// opened again). Other handles get [`StoreError::Stopped`] afterwards.
    pub async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Close { reply }).is_ok() {
            let _ = rx.await;
        }
    }

    /// Settlement records, oldest first, of one account or all.
    pub async fn settlements(&self, account: Option<AccountId>) -> Result<Vec<SettlementRecord>, StoreError> {
        self.ask(|reply| Command::Settlements { account, reply }).await
    }
}

/// Creates the tables that do not exist yet (one durable transaction).
fn create_tables(database: &Database) -> Result<(), Box<redb::Error>> {
    let txn = database.begin_write().map_err(|e| Box::new(e.into()))?;
    txn.open_table(ACCOUNTS).map_err(|e| Box::new(e.into()))?;
    txn.open_table(BALANCES).map_err(|e| Box::new(e.into()))?;
    txn.open_table(SETTLEMENTS).map_err(|e| Box::new(e.into()))?;
    txn.commit().map_err(|e| Box::new(e.into()))?;
    Ok(())
}

fn run(database: Database, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut batch = Vec::with_capacity(64);
    let mut closed = None;
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        if let Some(at) = batch.iter().position(|c| matches!(c, Command::Close { .. })) {
            // Everything after the close is refused (its reply sender is dropped: the caller sees Stopped).
            if let Command::Close { reply } = batch.swap_remove(at) {
                closed = Some(reply);
            }
            batch.truncate(at);
        }
        // Reads first (they see the state before this batch's writes; no caller mixes the two).
        let (reads, writes): (Vec<_>, Vec<_>) =
            batch.drain(..).partition(|c| matches!(c, Command::Snapshot { .. } | Command::Settlements { .. }));
        for c in reads {
            match c {
                Command::Snapshot { reply } => {
                    let _ = reply.send(read_snapshot(&database));
                }
                Command::Settlements { account, reply } => {
                    let _ = reply.send(read_settlements(&database, account.as_ref()));
                }
                _ => {}
            }
        }
        if !writes.is_empty() {
            write_batch(&database, writes);
        }
        if closed.is_some() {
            break;
        }
    }
    drop(database);
    if let Some(reply) = closed {
        let _ = reply.send(());
    }
}

enum Outcome {
    /// The batch's answers: `Ok(())` stands for "as the transaction goes".
    Commit(CommitReply, Vec<Committed>),
    Unit(oneshot::Sender<Result<(), StoreError>>),
    Settled(oneshot::Sender<Result<SettlementRecord, StoreError>>, SettlementRecord),
}

fn write_batch(database: &Database, writes: Vec<Command>) {
    let mut outcomes = Vec::with_capacity(writes.len());
    let result = (|| -> Result<(), StoreError> {
        let txn = database.begin_write().map_err(db)?;
        {
            // Only the tables a batch writes are opened: a table opened for writing has its root rewritten at the
            // commit, changed or not, and most batches are balance changes alone.
            let mut accounts = None;
            let mut balances = txn.open_table(BALANCES).map_err(db)?;
            let mut settlements = None;
            // Balances touched by this batch: each is read once and written once, however many commits move it.
            let mut touched: HashMap<AccountId, i128> = HashMap::default();
            for command in writes {
                match command {
                    Command::Commit { commits, reply } => {
                        // A failed commit fails alone; the others in the batch go on.
                        let answers = commits
                            .iter()
                            .map(|c| Committed { id: c.id, result: apply_deltas(&balances, &mut touched, &c.deltas) })
                            .collect();
                        outcomes.push(Outcome::Commit(reply, answers));
                    }
                    Command::PutAccount { account, reply } => {
                        let json = serde_json::to_vec(&account)
                            .map_err(|e| StoreError::Corrupt { key: account.spec.id.clone(), reason: e.to_string() })?;
                        let table = match &mut accounts {
                            Some(t) => t,
                            None => accounts.insert(txn.open_table(ACCOUNTS).map_err(db)?),
                        };
                        table.insert(account.spec.id.as_str(), json.as_slice()).map_err(db)?;
                        outcomes.push(Outcome::Unit(reply));
                    }
                    Command::DeleteAccount { id, reply } => {
                        let table = match &mut accounts {
                            Some(t) => t,
                            None => accounts.insert(txn.open_table(ACCOUNTS).map_err(db)?),
                        };
                        table.remove(id.as_str()).map_err(db)?;
                        outcomes.push(Outcome::Unit(reply));
                    }
                    Command::Settle { mut record, delta, reply } => {
                        if let Err(e) = apply_deltas(&balances, &mut touched, &[(record.account.clone(), delta)]) {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                        let (table, next_seq) = match &mut settlements {
                            Some(t) => t,
                            None => {
                                let table = txn.open_table(SETTLEMENTS).map_err(db)?;
                                let next = table.last().map_err(db)?.map(|(k, _)| k.value() + 1).unwrap_or(1);
                                settlements.insert((table, next))
                            }
                        };
                        record.seq = *next_seq;
                        *next_seq += 1;
                        record.balance = touched.get(&record.account).copied().unwrap_or(0);
                        let json = serde_json::to_vec(&record)
                            .map_err(|e| StoreError::Corrupt { key: record.seq.to_string(), reason: e.to_string() })?;
                        table.insert(record.seq, json.as_slice()).map_err(db)?;
                        outcomes.push(Outcome::Settled(reply, record));
                    }
                    Command::Snapshot { .. } | Command::Settlements { .. } | Command::Close { .. } => {}
                }
            }
            for (account, value) in &touched {
                balances.insert(account.as_str(), *value).map_err(db)?;
            }
        }
        txn.commit().map_err(db)
    })();
    for outcome in outcomes {
        match outcome {
            Outcome::Commit(reply, mut answers) => {
                if let Err(e) = &result {
                    for a in answers.iter_mut().filter(|a| a.result.is_ok()) {
                        a.result = Err(e.clone());
                    }
                }
                reply.send(answers);
            }
            Outcome::Unit(reply) => {
                let _ = reply.send(result.clone());
            }
            Outcome::Settled(reply, record) => {
                let _ = reply.send(result.clone().map(|()| record));
            }
        }
    }
}

/// Applies one commit's deltas to the batch's running balances, all or nothing.
fn apply_deltas(
    balances: &redb::Table<'_, &str, i128>,
    touched: &mut HashMap<AccountId, i128>,
    deltas: &[(AccountId, i128)],
) -> Result<(), StoreError> {
    // The usual commit (a Fulfill's two accounts, both already touched in this batch): one lookup per account.
    if let [(a, da), (b, db)] = deltas
        && a != b
        && let [Some(x), Some(y)] = touched.get_disjoint_mut([a, b])
    {
        let nx = x.checked_add(*da).ok_or_else(|| StoreError::Overflow(a.clone()))?;
        let ny = y.checked_add(*db).ok_or_else(|| StoreError::Overflow(b.clone()))?;
        (*x, *y) = (nx, ny);
        return Ok(());
    }
    // Otherwise the sums are checked against each account's running balance (an account may appear more than
    // once), then applied: nothing of a failed commit is written, and no allocation per commit.
    fn running(
        balances: &redb::Table<'_, &str, i128>,
        touched: &HashMap<AccountId, i128>,
        account: &AccountId,
    ) -> Result<i128, StoreError> {
        match touched.get(account) {
            Some(v) => Ok(*v),
            None => Ok(balances.get(account.as_str()).map_err(db)?.map(|v| v.value()).unwrap_or(0)),
        }
    }
    for (i, (account, _)) in deltas.iter().enumerate() {
        let mut sum = running(balances, touched, account)?;
        for (_, d) in deltas[..=i].iter().filter(|(a, _)| a == account) {
            sum = sum.checked_add(*d).ok_or_else(|| StoreError::Overflow(account.clone()))?;
        }
    }
    for (account, delta) in deltas {
        // Checked above: cannot overflow.
        match touched.get_mut(account) {
            Some(value) => *value += *delta,
            None => {
                let value = running(balances, touched, account)? + *delta;
                touched.insert(account.clone(), value);
            }
        }
    }
    Ok(())
}

fn read_snapshot(database: &Database) -> Result<Snapshot, StoreError> {
    let txn = database.begin_read().map_err(db)?;
    let mut snapshot = Snapshot::default();
    for row in txn.open_table(ACCOUNTS).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        let account: StoredAccount = serde_json::from_slice(v.value())
            .map_err(|e| StoreError::Corrupt { key: k.value().to_owned(), reason: e.to_string() })?;
        snapshot.accounts.push(account);
    }
    for row in txn.open_table(BALANCES).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        let id = AccountId::new(k.value())
            .map_err(|e| StoreError::Corrupt { key: k.value().to_owned(), reason: e.to_string() })?;
        snapshot.balances.push((id, v.value()));
    }
    Ok(snapshot)
}

fn read_settlements(database: &Database, account: Option<&AccountId>) -> Result<Vec<SettlementRecord>, StoreError> {
    let txn = database.begin_read().map_err(db)?;
    let mut out = Vec::new();
    for row in txn.open_table(SETTLEMENTS).map_err(db)?.iter().map_err(db)? {
        let (k, v) = row.map_err(db)?;
        let record: SettlementRecord = serde_json::from_slice(v.value())
            .map_err(|e| StoreError::Corrupt { key: k.value().to_string(), reason: e.to_string() })?;
        if account.is_none_or(|a| *a == record.account) {
            out.push(record);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AccountId {
        AccountId::new(s).unwrap()
    }

    #[tokio::test]
    async fn commits_are_atomic_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ilp.redb");
        {
            let store = Store::open(&path).unwrap();
            let (tx, mut rx) = mpsc::unbounded_channel();
            let commit = |id, deltas: Vec<_>| BalanceCommit { id, deltas: deltas.into() };
            for n in 0..50 {
                store.commit(vec![commit(n, vec![(id("a"), 5), (id("b"), -5)])], &tx);
            }
            // An overflow fails only its own commit, and writes none of its deltas, also in the middle of a batch.
            store.commit(
                (50..100)
                    .map(|n| commit(n, vec![(id("a"), 5), (id("b"), -5)]))
                    .chain([commit(100, vec![(id("b"), 7), (id("a"), i128::MAX)])])
                    // An account met twice in one commit: the sum counts, and a failure leaves no row behind.
                    .chain([commit(101, vec![(id("c"), 1), (id("c"), i128::MAX)])])
                    .collect(),
                &tx,
            );
            let mut answered = Vec::new();
            while answered.len() < 102 {
                for c in rx.recv().await.unwrap() {
                    match c.id {
                        100 | 101 => assert!(matches!(c.result, Err(StoreError::Overflow(_))), "{c:?}"),
                        _ => c.result.unwrap(),
                    }
                    answered.push(c.id);
                }
            }
            assert_eq!(answered, (0..=101).collect::<Vec<_>>(), "each commit answered once, in order");
            store.close().await;
            assert!(matches!(store.snapshot().await, Err(StoreError::Stopped)));
        }
        let store = Store::open(&path).unwrap();
        let mut balances = store.snapshot().await.unwrap().balances;
        balances.sort();
        assert_eq!(balances, vec![(id("a"), 500), (id("b"), -500)]);
    }

    #[tokio::test]
    async fn a_database_whose_creation_was_interrupted_is_made_again_and_never_half_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ilp.redb");
        // What a node killed while creating its database leaves: a half-written file beside the database's path,
        // never at it.
        std::fs::write(dir.path().join(".ilp.redb.tmp-0123456789ab"), b"redb\x1a\x0a\xa9\x0d\x0a half").unwrap();
        let store = Store::open(&path).unwrap();
        store
            .put_account(StoredAccount {
                spec: AccountSpec::new("a", crate::accounts::Relation::Peer, "USD", 9),
                source: AccountSource::Api,
            })
            .await
            .unwrap();
        store.close().await;
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ilp.redb")], "the leftover is gone");
        assert_eq!(Store::open(&path).unwrap().snapshot().await.unwrap().accounts.len(), 1);
    }

    #[tokio::test]
    async fn a_commit_the_store_did_not_write_is_still_answered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ilp.redb")).unwrap();
        let other = store.clone();
        store.close().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        other.commit(
            vec![
                BalanceCommit { id: 7, deltas: vec![(id("a"), 1)].into() },
                BalanceCommit { id: 8, deltas: Deltas::new() },
            ],
            &tx,
        );
        let answers = rx.recv().await.unwrap();
        assert_eq!(answers.iter().map(|c| c.id).collect::<Vec<_>>(), vec![7, 8]);
        assert!(answers.iter().all(|c| matches!(c.result, Err(StoreError::NotWritten))));
    }

    #[tokio::test]
    async fn settlements_move_the_balance_in_the_same_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ilp.redb")).unwrap();
        let record = |kind| SettlementRecord {
            seq: 0,
            account: id("bob"),
            kind,
            amount: 40,
            balance: 0,
            at_unix_ms: 1,
            note: String::new(),
        };
        let first = store.settle(record(SettlementKind::Outgoing), 40).await.unwrap();
        let second = store.settle(record(SettlementKind::Incoming), -15).await.unwrap();
        assert_eq!((first.seq, first.balance, second.seq, second.balance), (1, 40, 2, 25));
        assert_eq!(store.settlements(Some(id("bob"))).await.unwrap().len(), 2);
        assert!(store.settlements(Some(id("carol"))).await.unwrap().is_empty());
    }
}
