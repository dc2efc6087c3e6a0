//! Test harness: locates the built binary and plugin libraries, starts real servers on port 0,
//! and talks HTTP to them. Nothing here is mocked.
//!
//! The test command builds the workspace before running tests (`cargo build --workspace`), so
//! the binary and every plugin `.so` exist in the target directory; a missing one is a hard
//! failure with the command to run, never a skip.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod pg;

pub use pg::{PgServer, TestDb};

/// Which store a server (or a test) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `--jobstore memory`.
    Memory,
    /// `--jobstore postgres` on a fresh, migrated database.
    Postgres,
}

/// The directory cargo builds into for this profile (`target/debug`).
pub fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SCHEDULER_TEST_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // Test binaries live in target/<profile>/deps.
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// The built `scheduler` binary.
pub fn scheduler_bin() -> PathBuf {
    let p = target_dir().join("scheduler");
    assert!(
        p.is_file(),
        "{} is missing: build the workspace first with `cargo build --workspace` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The built plugin library `lib<name>.so`.
pub fn plugin_lib(name: &str) -> PathBuf {
    let p = target_dir().join(format!("lib{name}.so"));
    assert!(
        p.is_file(),
        "{} is missing: build the workspace first with `cargo build --workspace` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The example plugins a normal server loads.
pub const STANDARD_PLUGINS: [&str; 4] = ["vps4_backups", "noop", "fixture_panicky", "fixture_sleepy"];

/// A directory holding plugin libraries under chosen file names (hard links to the built ones).
pub struct PluginDir {
    dir: tempfile::TempDir,
}

impl PluginDir {
    /// A directory with these built plugins under their own names.
    pub fn with(names: &[&str]) -> PluginDir {
        let d = PluginDir::empty();
        for n in names {
            d.add(n, &format!("lib{n}.so"));
        }
        d
    }

    /// An empty directory.
    pub fn empty() -> PluginDir {
        PluginDir { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// Adds the built plugin `name` as `file_name`.
    pub fn add(&self, name: &str, file_name: &str) -> PathBuf {
        let src = plugin_lib(name);
        let dst = self.dir.path().join(file_name);
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).expect("copy plugin");
        }
        dst
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// An HTTP response: status, headers we care about, body as JSON (or `Null`).
#[derive(Debug)]
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The `Location` header.
    pub location: Option<String>,
    /// The `Link` header.
    pub link: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `WWW-Authenticate` header.
    pub www_authenticate: Option<String>,
    /// The `Retry-After` header.
    pub retry_after: Option<String>,
    /// The body parsed as JSON, or `Null` when empty or not JSON.
    pub body: Value,
    /// The raw body.
    pub text: String,
}

impl Resp {
    fn from(r: ureq::Response) -> Resp {
        let status = r.status();
        let location = r.header("location").map(str::to_owned);
        let link = r.header("link").map(str::to_owned);
        let content_type = r.header("content-type").map(str::to_owned);
        let www_authenticate = r.header("www-authenticate").map(str::to_owned);
        let retry_after = r.header("retry-after").map(str::to_owned);
        let text = r.into_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, location, link, content_type, www_authenticate, retry_after, body, text }
    }

    /// A field of the body.
    pub fn get(&self, key: &str) -> &Value {
        &self.body[key]
    }

    /// Asserts this is a problem+json with `status`, whose detail mentions `needle`.
    pub fn assert_problem(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "status of {}", self.text);
        assert_eq!(self.content_type.as_deref(), Some("application/problem+json"), "content type of {}", self.text);
        assert_eq!(self.body["status"], status, "{}", self.text);
        let detail = self.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(needle), "detail {detail:?} should mention {needle:?}");
        assert!(self.body["title"].is_string() && self.body["type"].is_string(), "{}", self.text);
    }
}

/// A server's output lines as they arrive, with a condition signalled on each new line.
pub type Logs = Arc<(Mutex<Vec<String>>, Condvar)>;

/// A running `scheduler` process.
pub struct Server {
    child: Option<Child>,
    /// The port it listens on.
    pub port: u16,
    logs: Logs,
    agent: ureq::Agent,
    /// Kept alive for the server's lifetime.
    _plugins: Option<Arc<PluginDir>>,
    /// The server's database, if PostgreSQL.
    pub db: Option<Arc<TestDb>>,
    /// `http` or `https`.
    scheme: &'static str,
}

/// How to start a server.
pub struct ServerOptions {
    /// Plugins to load.
    pub plugins: Option<Arc<PluginDir>>,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The database of a PostgreSQL server (kept alive with it).
    pub db: Option<Arc<TestDb>>,
    /// Serve HTTPS; the client trusts this certificate (DER).
    pub tls_root: Option<Vec<u8>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            plugins: Some(Arc::new(PluginDir::with(&STANDARD_PLUGINS))),
            args: Vec::new(),
            env: Vec::new(),
            db: None,
            tls_root: None,
        }
    }
}

/// A client that trusts only `root` (a DER certificate), with rustls and ring.
pub fn tls_agent(root: &[u8]) -> ureq::Agent {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(root.to_vec())).expect("a usable root certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).tls_config(Arc::new(config)).build()
}

impl ServerOptions {
    /// Defaults on this store (a fresh database for PostgreSQL).
    pub fn on(backend: Backend) -> Self {
        match backend {
            Backend::Memory => ServerOptions::default(),
            Backend::Postgres => ServerOptions::default().database(Arc::new(TestDb::create())),
        }
    }

    /// Uses this PostgreSQL database (several servers may share one).
    pub fn database(mut self, db: Arc<TestDb>) -> Self {
        self.db = Some(db);
        self
    }

    /// Adds command-line arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Serves HTTPS with this PEM certificate and key; the test client trusts `root` (DER).
    pub fn tls(mut self, cert: &Path, key: &Path, root: Vec<u8>) -> Self {
        self.args.extend([
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ]);
        self.tls_root = Some(root);
        self
    }

    /// Loads these plugins instead of the standard ones.
    pub fn plugins(mut self, dir: PluginDir) -> Self {
        self.plugins = Some(Arc::new(dir));
        self
    }
}

/// Starts the binary and captures its output; returns the child and the shared log lines.
pub fn spawn(opts: &ServerOptions) -> (Child, Logs) {
    let mut cmd = Command::new(scheduler_bin());
    cmd.arg("--bind").arg("127.0.0.1:0");
    if !opts.args.iter().any(|a| a == "--workers") {
        cmd.arg("--workers").arg("8");
    }
    if let Some(p) = &opts.plugins {
        cmd.arg("--plugins").arg(p.path());
    }
    if let Some(db) = &opts.db {
        cmd.args(["--jobstore", "postgres", "--database-url", &db.url, "--db-pool-size", "8"]);
    }
    cmd.args(&opts.args)
        .env("RUST_LOG", "info")
        .env_remove("SCHEDULER_JOBSTORE")
        .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start scheduler");
    let logs: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let (lock, cond) = &*logs;
                lock.lock().expect("logs").push(line);
                cond.notify_all();
            }
        });
    }
    (child, logs)
}

impl Server {
    /// Starts a server with the standard plugins on the memory store.
    pub fn start() -> Server {
        Server::start_with(ServerOptions::default())
    }

    /// Starts a server with the standard plugins on this store.
    pub fn start_on(backend: Backend) -> Server {
        Server::start_with(ServerOptions::on(backend))
    }

    /// Starts a server and waits (up to 60 s) until it listens.
    pub fn start_with(opts: ServerOptions) -> Server {
        let (child, logs) = spawn(&opts);
        let mut server = Server {
            child: Some(child),
            port: 0,
            logs,
            agent: match &opts.tls_root {
                Some(root) => tls_agent(root),
                None => ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build(),
            },
            _plugins: opts.plugins.clone(),
            db: opts.db.clone(),
            scheme: if opts.tls_root.is_some() { "https" } else { "http" },
        };
        let listening = format!("scheduler listening on {}://", server.scheme);
        let deadline = Instant::now() + Duration::from_secs(60);
        let line = loop {
            if let Some(l) = server.wait_for_log(&listening, Duration::from_millis(100)) {
                break l;
            }
            let exited = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                // Give the output threads a moment to collect the last lines.
                let _ = server.wait_for_log("\u{0}never", Duration::from_millis(200));
                panic!("server did not start ({exited:?}); its output:\n{}", server.logs());
            }
        };
        let after = line.split(&listening).nth(1).unwrap_or_default();
        let addr = after.split_whitespace().next().unwrap_or_default();
        server.port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port in log line");
        server
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{}", self.scheme, self.port, path)
    }

    fn send(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        self.send_with(method, path, body, &[])
    }

    /// Any method, optional body, extra headers.
    pub fn send_with(&self, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.request(method, &self.url(path)).set("Accept", "application/json");
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let r = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(b),
            None => req.call(),
        };
        match r {
            Ok(resp) => Resp::from(resp),
            Err(ureq::Error::Status(_, resp)) => Resp::from(resp),
            Err(e) => panic!("{method} {path} failed: {e}\nserver output:\n{}", self.logs()),
        }
    }

    /// POSTs a job and asserts it was created (201); returns its JSON.
    pub fn create(&self, path: &str, body: &Value) -> Value {
        let r = self.post_json(path, body);
        assert_eq!(r.status, 201, "create {body}: {}", r.text);
        r.body
    }

    /// A job's runs, newest first.
    pub fn runs_of(&self, job_path: &str) -> Vec<Value> {
        let r = self.get(&format!("{job_path}/runs"));
        assert_eq!(r.status, 200, "{}", r.text);
        r.body.as_array().cloned().unwrap_or_default()
    }

    /// Polls a job until `f` accepts it (up to `timeout`), returning the job.
    pub fn wait_job(&self, job_path: &str, what: &str, timeout: Duration, f: impl Fn(&Value) -> bool) -> Value {
        wait_until(&format!("{job_path} {what}"), timeout, || {
            let r = self.get(job_path);
            (r.status == 200 && f(&r.body)).then_some(r.body)
        })
    }

    /// Polls a job's runs until `f` accepts them (up to `timeout`), returning them oldest first.
    pub fn wait_runs(&self, job_path: &str, what: &str, timeout: Duration, f: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        wait_until(&format!("runs of {job_path}: {what}"), timeout, || {
            let mut runs = self.runs_of(job_path);
            runs.reverse();
            f(&runs).then_some(runs)
        })
    }

    /// GET.
    pub fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None)
    }

    /// POST a body (sent as-is).
    pub fn post(&self, path: &str, body: &str) -> Resp {
        self.send("POST", path, Some(body))
    }

    /// POST JSON.
    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.post(path, &body.to_string())
    }

    /// PATCH a body (sent as-is).
    pub fn patch(&self, path: &str, body: &str) -> Resp {
        self.send("PATCH", path, Some(body))
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None)
    }

    /// Any method, no body.
    pub fn request(&self, method: &str, path: &str) -> Resp {
        self.send(method, path, None)
    }

    /// Everything the server printed so far.
    pub fn logs(&self) -> String {
        self.logs.0.lock().expect("logs").join("\n")
    }

    /// Waits for a log line containing `needle`; returns it.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        wait_for_line(&self.logs, needle, timeout)
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGHUP (re-read the tokens file).
    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    /// Freezes the process (SIGSTOP): it holds its claims but does nothing, heartbeats included.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Wakes a frozen process (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// This server's node id, as it reports it.
    pub fn node_id(&self) -> String {
        self.get("/api/scheduler").body["node"].as_str().unwrap_or_default().to_owned()
    }

    /// Sends SIGKILL.
    pub fn sigkill(&self) {
        self.signal(libc::SIGKILL);
    }

    fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until a captured output line contains `needle`; returns it. Output is read by other
/// threads, so a line printed just before a process exits may arrive after the exit is seen.
pub fn wait_for_line(logs: &Logs, needle: &str, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let (lock, cond) = &**logs;
    let mut lines = lock.lock().expect("logs");
    loop {
        if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        lines = cond.wait_timeout(lines, deadline - now).expect("logs").0;
    }
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An RFC 3339 instant `offset_ms` from now (negative for the past).
pub fn instant_in(offset_ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A VM id for backup requests.
pub const VM: &str = "79bfd10c-1529-42de-bd68-1a6e084ee13d";
/// The VM id the example veto listener vetoes.
pub const NIL_VM: &str = "00000000-0000-0000-0000-000000000000";

/// Creates jobs over HTTP from `threads` client threads, spreading them over `servers` in
/// turn. Returns the ids in the order of `bodies`.
pub fn create_many(servers: &[&Server], path: &str, bodies: Vec<Value>, threads: usize) -> Vec<String> {
    let n = bodies.len();
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let urls: Vec<String> = servers.iter().map(|s| s.url(path)).collect();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (bodies, next, urls) = (bodies.clone(), next.clone(), urls.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= bodies.len() {
                        return out;
                    }
                    let url = &urls[i % urls.len()];
                    let resp = agent
                        .post(url)
                        .set("Content-Type", "application/json")
                        .send_string(&bodies[i].to_string())
                        .unwrap_or_else(|e| panic!("create {i} on {url}: {e}"));
                    let v: Value = resp.into_json().expect("job JSON");
                    out.push((i, v["id"].as_str().expect("id").to_owned()));
                }
            })
        })
        .collect();
    let mut ids = vec![String::new(); n];
    for h in handles {
        for (i, id) in h.join().expect("client thread") {
            ids[i] = id;
        }
    }
    ids
}

/// Lines of a plugin's start record (`start-record`): job id, run id, attempt, unix ms.
pub fn read_starts(path: &Path) -> Vec<(String, String, u32, i64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_owned(), f.next()?.to_owned(), f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

/// True while a run (as the API shows it) holds its job: claimed or executing.
pub fn in_progress(run: &Value) -> bool {
    run["outcome"] == "claimed" || run["outcome"] == "running"
}

/// An RFC 3339 instant as milliseconds since the Unix epoch.
pub fn ms_of(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("an instant, not {v}"));
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).timestamp_millis()
}

/// Milliseconds since the Unix epoch as RFC 3339 (millisecond precision).
pub fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("an instant")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
