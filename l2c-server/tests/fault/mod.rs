//! Throw-away PostgreSQL and Redis servers a fault test may stop and restart without touching
//! the shared services.
//!
//! [`Services::start`] runs `initdb` (as the `postgres` user when the test runs as root, since
//! PostgreSQL refuses to run as root) in a fresh temp directory, starts PostgreSQL on a free
//! loopback port with `fsync=off`, and starts `redis-server` on another free port with an
//! append-only file fsynced on every write (so a restarted Redis still holds the idempotency
//! records written before it stopped, like a production Redis with AOF). Dropping the
//! [`Services`] kills Redis, stops PostgreSQL (`-m immediate`) and removes the directory, so a
//! failing test cleans up too.
//!
//! When `pg_config`, `initdb`, `pg_ctl` or `redis-server` is missing (or, as root, `runuser` or
//! the `postgres` user), [`Services::start`] prints a `skipping:` line and returns `None`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A throw-away PostgreSQL and Redis.
pub struct Services {
    dir: PathBuf,
    bindir: PathBuf,
    /// PostgreSQL's port on 127.0.0.1.
    pub pg_port: u16,
    /// Redis' port on 127.0.0.1.
    pub redis_port: u16,
    redis: Option<Child>,
    pg_running: bool,
    as_postgres: bool,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn found(path: &Path) -> bool {
    path.is_file()
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Services {
    /// Starts both, or prints a `skipping:` line naming `test` and returns `None` when a binary
    /// is missing.
    pub fn start(test: &str) -> Option<Services> {
        let Some(bindir) = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        else {
            eprintln!("skipping {test}: pg_config not found");
            return None;
        };
        for bin in ["initdb", "pg_ctl", "postgres"] {
            if !found(&bindir.join(bin)) {
                eprintln!("skipping {test}: {bin} not found in {}", bindir.display());
                return None;
            }
        }
        if which("redis-server").is_none() {
            eprintln!("skipping {test}: redis-server not found");
            return None;
        }
        let as_postgres = is_root();
        if as_postgres && which("runuser").is_none() {
            eprintln!("skipping {test}: running as root without runuser");
            return None;
        }
        let postgres_user = || {
            Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if as_postgres && !postgres_user() {
            eprintln!(
                "skipping {test}: running as root without a `postgres` user to run PostgreSQL"
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!("l2c-fault-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("redis")).unwrap();
        let mut services = Services {
            dir,
            bindir,
            pg_port: free_port(),
            redis_port: free_port(),
            redis: None,
            pg_running: false,
            as_postgres,
        };
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&services.dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown the temp dir to postgres");
        }
        let out = services
            .pg_command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(services.pg_data())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The free ports were released before the servers bind them: another test may take
        // one first. The first start then tries fresh ports (restarts keep theirs).
        for attempt in 1..=3 {
            match services.try_start_pg() {
                Ok(()) => break,
                Err(log) if attempt < 3 => {
                    eprintln!(
                        "PostgreSQL did not start on {}; another port: {log}",
                        services.pg_port
                    );
                    services.pg_port = free_port();
                }
                Err(log) => panic!("PostgreSQL did not start: {log}"),
            }
        }
        for attempt in 1..=3 {
            match services.try_start_redis() {
                Ok(()) => break,
                Err(why) if attempt < 3 => {
                    eprintln!(
                        "Redis did not start on {}; another port: {why}",
                        services.redis_port
                    );
                    services.redis_port = free_port();
                }
                Err(why) => panic!("Redis did not start: {why}"),
            }
        }
        Some(services)
    }

    fn pg_data(&self) -> PathBuf {
        self.dir.join("pg")
    }

    fn pg_command(&self, bin: &str) -> Command {
        let path = self.bindir.join(bin);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The admin URL of the throw-away PostgreSQL (database `postgres`).
    pub fn pg_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.pg_port)
    }

    /// The URL of the throw-away Redis.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.redis_port)
    }

    /// Starts PostgreSQL on its port and data directory; waits until it accepts connections.
    pub fn start_pg(&mut self) {
        if let Err(log) = self.try_start_pg() {
            panic!("pg_ctl start failed: {log}");
        }
    }

    fn try_start_pg(&mut self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off \
             -c max_connections=100",
            self.pg_port,
            self.dir.display()
        );
        let out = self
            .pg_command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.pg_data())
            .arg("-l")
            .arg(self.dir.join("pg.log"))
            .args(["-o", &options])
            .output()
            .unwrap();
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("pg.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(format!(
                "{} {}",
                String::from_utf8_lossy(&out.stderr).trim(),
                tail.join(" | ")
            ));
        }
        self.pg_running = true;
        Ok(())
    }

    /// Stops PostgreSQL: `fast` (clean) or `immediate` (as a crash would).
    pub fn stop_pg(&mut self, mode: &str) {
        let out = self
            .pg_command("pg_ctl")
            .args(["stop", "-w", "-t", "60", "-m", mode, "-D"])
            .arg(self.pg_data())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.pg_running = false;
    }

    /// Starts Redis on its port (AOF fsynced on every write, in the temp dir); waits until it
    /// answers.
    pub fn start_redis(&mut self) {
        if let Err(why) = self.try_start_redis() {
            panic!("redis-server did not start: {why}");
        }
    }

    fn try_start_redis(&mut self) -> Result<(), String> {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &self.redis_port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.join("redis"))
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Ours, not another test's Redis that took the port first.
            if redis_pid(self.redis_port) == Some(child.id()) {
                self.redis = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited: {status}"));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("no answer within 20 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills Redis with SIGKILL and waits for it to exit.
    pub fn kill_redis(&mut self) {
        if let Some(mut child) = self.redis.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The process id a Redis on `port` reports (`INFO server`), once it answers.
fn redis_pid(port: u16) -> Option<u32> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut buf = vec![0u8; 8192];
    let mut text = String::new();
    while !text.contains("process_id:") || !text[text.find("process_id:")?..].contains("\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let rest = &text[text.find("process_id:")? + "process_id:".len()..];
    rest[..rest.find("\r\n")?].trim().parse().ok()
}

impl Drop for Services {
    fn drop(&mut self) {
        self.kill_redis();
        if self.pg_running {
            let _ = self
                .pg_command("pg_ctl")
                .args(["stop", "-w", "-t", "30", "-m", "immediate", "-D"])
                .arg(self.pg_data())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
