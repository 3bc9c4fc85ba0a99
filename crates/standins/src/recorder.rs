use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// A directory of recording stand-in executables (put [`Recorder::bin_dir`] first on `PATH`) and
/// the log they append to: one JSON line per call, `{"tool": …, "argv": […], "stdin": …}`.
pub struct Recorder {
    dir: tempfile::TempDir,
}

/// One recorded invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub tool: String,
    pub argv: Vec<String>,
    /// What the caller wrote to stdin, for calls matching [`StandIn::reads_stdin`].
    pub stdin: Option<String>,
}

/// What a stand-in prints and returns for calls whose arguments start with a given prefix.
#[derive(Debug, Clone)]
pub struct Reply {
    stdout: String,
    stderr: String,
    code: i32,
}

impl Reply {
    pub fn ok(stdout: &str) -> Reply {
        Reply { stdout: stdout.to_string(), stderr: String::new(), code: 0 }
    }

    pub fn fail(code: i32, stderr: &str) -> Reply {
        Reply { stdout: String::new(), stderr: stderr.to_string(), code }
    }
}

/// A fake executable: canned replies by argument prefix (first match wins), else exit 0 silently.
#[derive(Debug, Clone)]
pub struct StandIn {
    name: String,
    replies: Vec<(Vec<String>, Reply)>,
    stdin_prefixes: Vec<Vec<String>>,
}

impl StandIn {
    pub fn new(name: &str) -> StandIn {
        StandIn { name: name.to_string(), replies: Vec::new(), stdin_prefixes: Vec::new() }
    }

    pub fn reply(mut self, args_prefix: &[&str], reply: Reply) -> StandIn {
        self.replies.push((words(args_prefix), reply));
        self
    }

    /// Read and record stdin for calls with these leading arguments (e.g. `login`), so a test can
    /// prove a secret came through stdin and not argv. Other calls never touch stdin.
    pub fn reads_stdin(mut self, args_prefix: &[&str]) -> StandIn {
        self.stdin_prefixes.push(words(args_prefix));
        self
    }
}

impl Recorder {
    pub fn new() -> anyhow::Result<Recorder> {
        let dir = tempfile::Builder::new().prefix("standins-").tempdir().context("creating the stand-in directory")?;
        std::fs::create_dir(dir.path().join("bin"))?;
        Ok(Recorder { dir })
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("calls.jsonl")
    }

    /// Writes the stand-in into [`Recorder::bin_dir`], replacing one of the same name.
    pub fn install(&self, stand_in: &StandIn) -> anyhow::Result<PathBuf> {
        let path = self.bin_dir().join(&stand_in.name);
        std::fs::write(&path, self.script(stand_in)).with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(path)
    }

    /// `PATH` with the stand-ins first, then `rest` (e.g. the venv's bin and the system dirs).
    pub fn path_with(&self, rest: &[&Path]) -> OsString {
        let dirs = std::iter::once(self.bin_dir()).chain(rest.iter().map(|p| p.to_path_buf()));
        std::env::join_paths(dirs).expect("no ':' in the directories")
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> anyhow::Result<Vec<Call>> {
        let text = match std::fs::read_to_string(self.log_path()) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context("reading the stand-in log"),
        };
        // A call still being recorded has no newline yet: it is not a call so far.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).with_context(|| format!("stand-in log line {line:?}"))?;
                Ok(Call {
                    tool: v["tool"].as_str().unwrap_or_default().to_string(),
                    argv: v["argv"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(str::to_string))
                        .collect(),
                    stdin: v["stdin"].as_str().map(str::to_string),
                })
            })
            .collect()
    }

    /// The argument lists of one tool's calls.
    pub fn argv_of(&self, tool: &str) -> anyhow::Result<Vec<Vec<String>>> {
        Ok(self.calls()?.into_iter().filter(|c| c.tool == tool).map(|c| c.argv).collect())
    }

    fn script(&self, stand_in: &StandIn) -> String {
        let mut cases = String::new();
        for (prefix, reply) in &stand_in.replies {
            cases.push_str(&format!(
                "  {}) printf '%s' {}; printf '%s' {} >&2; exit {} ;;\n",
                pattern(prefix),
                sh_quote(&reply.stdout),
                sh_quote(&reply.stderr),
                reply.code
            ));
        }
        let mut stdin = String::new();
        for prefix in &stand_in.stdin_prefixes {
            stdin.push_str(&format!(
                "  {}) printf ',\"stdin\":\"%s\"' \"$(json_escape \"$(cat)\")\" ;;\n",
                pattern(prefix)
            ));
        }
        format!(
            r#"#!/bin/sh
# Recording stand-in for `{name}`, written by the standins crate for a test.
# sed escapes (awk's gsub treats backslashes differently per implementation); awk joins lines.
json_escape() {{
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/{tab}/\\t/g' | awk 'BEGIN {{ ORS = "" }} {{ if (NR > 1) print "\\n"; print }}'
}}
# Most arguments need no escaping: those are printed without starting sed and awk.
nl='
'
json_arg() {{
  case $1 in
    *'\'* | *'"'* | *'{tab}'* | *"$nl"*) json_escape "$1" ;;
    *) printf '%s' "$1" ;;
  esac
}}
# The record is built first and appended with one write: a reader never sees half a line
# that ends in a newline.
record=$(
  printf '{{"tool":"%s","argv":[' {name_q}
  sep=''
  for arg in "$@"; do
    printf '%s"' "$sep"; json_arg "$arg"; printf '"'
    sep=','
  done
  printf ']'
  case " $* " in
{stdin}  esac
  printf '}}'
)
printf '%s\n' "$record" >> {log}
case " $* " in
{cases}esac
exit 0
"#,
            name = stand_in.name,
            name_q = sh_quote(&stand_in.name),
            tab = '\t',
            log = sh_quote(&self.log_path().to_string_lossy()),
        )
    }
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A `case` pattern for calls starting with `prefix`: matching " a b " plus a glob keeps whole
/// words, so `build` never matches `buildx`.
fn pattern(prefix: &[String]) -> String {
    format!("{}*", sh_quote(&format!(" {} ", prefix.join(" "))))
}

fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `name` resolved on `path` (like `which`), for tests that must prove which binary runs.
pub fn find_on(path: &OsStr, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path).map(|d| d.join(name)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_argv_and_stdin_and_answers_by_prefix() {
        let rec = Recorder::new().unwrap();
        let tool = StandIn::new("docker")
            .reply(&["buildx", "version"], Reply::ok("github.com/docker/buildx v0.17.1 abc\n"))
            .reply(&["push"], Reply::fail(1, "denied\n"))
            .reads_stdin(&["login"]);
        let path = rec.install(&tool).unwrap();

        let out = std::process::Command::new(&path)
            .args(["buildx", "version"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "github.com/docker/buildx v0.17.1 abc\n");

        let out =
            std::process::Command::new(&path).args(["push", "x"]).stdin(std::process::Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "denied\n");

        let mut child = std::process::Command::new(&path)
            .args(["login", "--password-stdin", "it's \"quoted\"\\", "two\nlines", "tab\there"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"s3cret").unwrap();
        assert!(child.wait().unwrap().success());

        let calls = rec.calls().unwrap();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].argv, ["buildx", "version"]);
        assert_eq!(calls[0].stdin, None);
        assert_eq!(calls[2].argv, ["login", "--password-stdin", "it's \"quoted\"\\", "two\nlines", "tab\there"]);
        assert_eq!(calls[2].stdin.as_deref(), Some("s3cret"));
        assert_eq!(rec.argv_of("docker").unwrap().len(), 3);
        assert!(rec.argv_of("aws").unwrap().is_empty());
    }

    #[test]
    fn prefixes_match_whole_words() {
        let rec = Recorder::new().unwrap();
        let path = rec.install(&StandIn::new("tool").reply(&["build"], Reply::fail(3, ""))).unwrap();
        let status = std::process::Command::new(&path).arg("buildx").status().unwrap();
        assert!(status.success());
        let status = std::process::Command::new(&path).args(["build", "."]).status().unwrap();
        assert_eq!(status.code(), Some(3));
    }

    #[test]
    fn path_puts_the_stand_ins_first() {
        let rec = Recorder::new().unwrap();
        rec.install(&StandIn::new("git")).unwrap();
        let path = rec.path_with(&[Path::new("/usr/bin"), Path::new("/bin")]);
        assert_eq!(find_on(&path, "git").unwrap(), rec.bin_dir().join("git"));
    }
}
