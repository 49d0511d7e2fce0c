//! Crash-safe file replacement: write a temporary file, fsync it, rename it over the target, fsync the directory.
//!
//! A reader (or a restarted process) sees either the old contents or the new contents, never a torn mix, even if the
//! process or the machine dies in the middle of the write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Length of the random hex suffix of a temporary file's name.
const SUFFIX_HEX_LEN: usize = 12;

/// Atomically replaces the file at `path` with `contents`, creating it with Unix permission bits `mode` (for example
/// `0o600` for secrets). Parent directories must exist. A crash mid-write can leave a temporary file named
/// `.<file name>.tmp-<random>` in the same directory; [`remove_leftovers`] deletes those.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let (dir, prefix) = split(path)?;
    let mut suffix = [0u8; SUFFIX_HEX_LEN / 2];
    getrandom::fill(&mut suffix).map_err(io::Error::other)?;
    let tmp = dir.join(format!("{prefix}{}", hex::encode(suffix)));

    let result = (|| {
        let mut file = open_new(&tmp, mode)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates the file at `path` through `build`, which makes it in full at the temporary path it is given (a database
/// initialising its file, say); the file appears at `path`, with Unix permission bits `mode`, only once `build` has
/// succeeded and the file is on disk. A crash part-way never leaves a half-made file at `path`: at most a temporary
/// one, which [`remove_leftovers`] deletes. An existing file at `path` is never replaced: if another process made
/// one meanwhile, that one stays and this returns `Ok(false)` (`Ok(true)`: ours is in place).
pub fn create_atomic<E: From<io::Error>>(
    path: &Path,
    mode: u32,
    build: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<bool, E> {
    let (dir, prefix) = split(path)?;
    let mut suffix = [0u8; SUFFIX_HEX_LEN / 2];
    getrandom::fill(&mut suffix).map_err(io::Error::other)?;
    let tmp = dir.join(format!("{prefix}{}", hex::encode(suffix)));
    let result = build(&tmp).and_then(|()| {
        set_mode(&tmp, mode)?;
        // Opened for writing: some systems refuse to sync a file opened read-only.
        OpenOptions::new().write(true).open(&tmp)?.sync_all()?;
        // A link, not a rename: it fails rather than replace a file that appeared at `path` meanwhile.
        let placed = match fs::hard_link(&tmp, path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            // A file system without hard links: a rename, unless a file appeared meanwhile.
            Err(_) if fs::symlink_metadata(path).is_ok() => false,
            Err(_) => {
                fs::rename(&tmp, path)?;
                true
            }
        };
        sync_dir(&dir)?;
        Ok(placed)
    });
    let _ = fs::remove_file(&tmp);
    result
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Deletes the temporary files that interrupted [`write_atomic`] calls for `path` left behind, and returns how many
/// it deleted. Call it before the first write of a process that is the file's only writer (for example when it loads
/// the file at startup); a concurrent writer's temporary file would be deleted too.
pub fn remove_leftovers(path: &Path) -> io::Result<usize> {
    let (dir, prefix) = split(path)?;
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let is_leftover = name.to_str().and_then(|n| n.strip_prefix(prefix.as_str())).is_some_and(|suffix| {
            suffix.len() == SUFFIX_HEX_LEN && suffix.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if is_leftover && entry.file_type()?.is_file() {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// The directory of `path` and the name prefix of its temporary files.
fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    Ok((dir, format!(".{}.tmp-", name.to_string_lossy())))
}

#[cfg(unix)]
fn open_new(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().write(true).create_new(true).mode(mode).open(path)
}

#[cfg(not(unix))]
fn open_new(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_made_elsewhere_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        // A build that fails half-way leaves nothing behind, at the path or beside it.
        let failed = create_atomic(&path, 0o600, |tmp| {
            fs::write(tmp, b"half")?;
            Err(io::Error::other("crashed"))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(create_atomic(&path, 0o600, |tmp| fs::write(tmp, b"whole")).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"whole");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A file already there (another process made it meanwhile) is never replaced.
        assert!(!create_atomic(&path, 0o600, |tmp| fs::write(tmp, b"other")).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"whole");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replaces_contents_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("book.json");
        write_atomic(&path, b"first", 0o644).unwrap();
        write_atomic(&path, b"second", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("book.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn applies_the_requested_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_atomic(&path, b"x", 0o600).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn leftovers_of_interrupted_writes_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("book.json");
        write_atomic(&path, b"kept", 0o644).unwrap();
        // What a crash between creating and renaming the temporary file leaves behind.
        fs::write(dir.path().join(".book.json.tmp-0123456789ab"), b"torn").unwrap();
        fs::write(dir.path().join(".book.json.tmp-fedcba987654"), b"torn").unwrap();
        // Not ours: another file's leftover, a different suffix, an unrelated file.
        let others = [".other.json.tmp-0123456789ab", ".book.json.tmp-notours", "book.json.bak"];
        for other in others {
            fs::write(dir.path().join(other), b"x").unwrap();
        }
        assert_eq!(remove_leftovers(&path).unwrap(), 2);
        let mut names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        let mut want: Vec<_> = others.iter().map(|s| s.to_string()).chain(["book.json".to_string()]).collect();
        want.sort();
        assert_eq!(names, want);
        assert_eq!(fs::read(&path).unwrap(), b"kept");
        assert_eq!(remove_leftovers(&dir.path().join("missing/book.json")).unwrap(), 0);
    }

    #[test]
    fn missing_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(&dir.path().join("nope/file"), b"x", 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
