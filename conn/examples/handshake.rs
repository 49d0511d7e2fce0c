//! A first look at the secret connection: handshake with a peer, report it, then echo lines.
//!
//! ```text
//! cargo run --release -p ledgerwire-conn --example handshake -- --listen 127.0.0.1:26656
//! cargo run --release -p ledgerwire-conn --example handshake -- --dial 127.0.0.1:26656 [--profile cometbft]
//! ```
//!
//! Each side generates a fresh node key, runs the handshake and prints one JSON line: its own ID, the peer's
//! authenticated ID and how long the handshake took. Then it echoes every line it receives back to the sender until
//! the peer closes. The dialing side also sends its standard input, line by line, and prints what comes back; when
//! standard input ends it closes its sending side and waits for the last echoes.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ledgerwire_conn::{SecretConnection, SecretReader, SecretWriter};
use ledgerwire_types::{NodeKey, WireProfile};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Longest line we echo; a longer one from the peer ends the session (lines are bounded like every peer input).
const MAX_LINE: u64 = 64 * 1024;

#[derive(Parser, Debug)]
#[command(about = "Secret connection handshake and line echo")]
struct Args {
    /// Wait for one peer on this address (use port 0 for any free port).
    #[arg(long, conflicts_with = "dial", required_unless_present = "dial")]
    listen: Option<SocketAddr>,
    /// Connect to a listening peer at this address.
    #[arg(long)]
    dial: Option<SocketAddr>,
    /// Wire profile: tm2 (gno) or cometbft.
    #[arg(long, default_value = "tm2")]
    profile: WireProfile,
    /// Handshake deadline in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let key = NodeKey::generate();
    let (socket, dialing) = match (args.listen, args.dial) {
        (Some(addr), _) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e} (pick another --listen)"))?;
            eprintln!("listening on {} as {}", listener.local_addr()?, key.node_id(args.profile));
            (listener.accept().await?.0, false)
        }
        (None, Some(addr)) => (
            TcpStream::connect(addr)
                .await
                .map_err(|e| format!("cannot connect to {addr}: {e} (is the peer listening?)"))?,
            true,
        ),
        (None, None) => return Err("give --listen or --dial".into()),
    };
    socket.set_nodelay(true)?;
    let remote_addr = socket.peer_addr()?;
    let started = Instant::now();
    let conn = SecretConnection::handshake(socket, &key, args.profile, Duration::from_secs(args.timeout)).await?;
    let elapsed = started.elapsed();
    println!(
        "{}",
        serde_json::json!({
            "event": "handshake",
            "profile": args.profile.to_string(),
            "local_id": key.node_id(args.profile).to_string(),
            "remote_id": conn.remote_id().to_string(),
            "remote_addr": remote_addr.to_string(),
            "handshake_ms": elapsed.as_secs_f64() * 1e3,
        })
    );
    let (reader, writer) = conn.split();
    if dialing { send_stdin_and_print(reader, writer).await } else { echo(reader, writer).await }
}

/// Reads one line of at most [`MAX_LINE`] bytes; `None` at end of stream.
async fn next_line(reader: &mut SecretReader<OwnedReadHalf>) -> Result<Option<Vec<u8>>, Box<dyn std::error::Error>> {
    let mut line = Vec::new();
    (&mut *reader).take(MAX_LINE + 1).read_until(b'\n', &mut line).await?;
    if line.len() as u64 > MAX_LINE {
        return Err(format!("peer sent a line longer than {MAX_LINE} bytes").into());
    }
    Ok(if line.is_empty() { None } else { Some(line) })
}

async fn echo(
    mut reader: SecretReader<OwnedReadHalf>,
    mut writer: SecretWriter<OwnedWriteHalf>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut lines = 0u64;
    while let Some(line) = next_line(&mut reader).await? {
        writer.write_all(&line).await?;
        writer.flush().await?;
        lines += 1;
    }
    writer.shutdown().await?;
    eprintln!("peer closed after {lines} lines");
    Ok(())
}

async fn send_stdin_and_print(
    mut reader: SecretReader<OwnedReadHalf>,
    mut writer: SecretWriter<OwnedWriteHalf>,
) -> Result<(), Box<dyn std::error::Error>> {
    let send = async move {
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = stdin.next_line().await? {
            writer.write_all(line.as_bytes()).await?;
            writer.write_all(b"\n").await?;
            writer.flush().await?;
        }
        writer.shutdown().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let print = async move {
        while let Some(line) = next_line(&mut reader).await? {
            print!("{}", String::from_utf8_lossy(&line));
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    tokio::try_join!(send, print)?;
    Ok(())
}
