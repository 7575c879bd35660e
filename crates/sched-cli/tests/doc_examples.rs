//! The `sched next` examples in the README and in `docs/` print what the docs say.
//!
//! Every ```sh block is scanned for `sched next ...` commands (a trailing `\` continues a
//! line). What follows a command, bare or written as a `# ...` comment, says what it does:
//!
//! * lines that are RFC 3339 times: its standard output, exactly, with exit status 0;
//! * one line `error: ...`: its standard error, exactly, with exit status 2 and nothing on
//!   standard output;
//! * one line `(no output)`: nothing on standard output, exit status 0 (a finished trigger).
//!
//! A command followed by none of these (one that depends on the clock) is not run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a documented command is said to do.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Exit 0 with exactly these lines on stdout (none for `(no output)`).
    Prints(Vec<String>),
    /// Exit 2, nothing on stdout, exactly this on stderr.
    Fails(String),
}

/// One documented command and what it does.
#[derive(Debug)]
struct Example {
    place: String,
    args: Vec<String>,
    outcome: Outcome,
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// Splits a command line like a POSIX shell does for the simple cases the docs use:
/// whitespace-separated words, single quotes taken literally, double quotes without escapes.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(other) => word.push(other),
                        None => return Err(format!("unclosed quote in {line:?}")),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn is_time(text: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

fn examples_in(rel: &str) -> Vec<Example> {
    let text = std::fs::read_to_string(repo_file(rel)).expect("read a documentation file");
    let mut examples = Vec::new();
    let mut in_sh = false;
    // Logical lines of the current block, with the number of their first physical line.
    let mut block: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if !in_sh {
            in_sh = trimmed == "```sh";
            continue;
        }
        if trimmed == "```" {
            in_sh = false;
            examples.extend(block_examples(rel, &std::mem::take(&mut block)));
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(trimmed);
                block.push((start, joined));
            }
        }
    }
    examples
}

fn block_examples(rel: &str, lines: &[(usize, String)]) -> Vec<Example> {
    let mut out = Vec::new();
    for (k, (number, line)) in lines.iter().enumerate() {
        if !line.starts_with("sched next ") {
            continue;
        }
        let following: Vec<String> = lines[k + 1..]
            .iter()
            .map(|(_, l)| l.trim_start_matches('#').trim().to_owned())
            .collect();
        let times: Vec<String> = following
            .iter()
            .take_while(|l| is_time(l))
            .cloned()
            .collect();
        let outcome = match following.first() {
            _ if !times.is_empty() => Outcome::Prints(times),
            Some(l) if l.starts_with("error: ") => Outcome::Fails(l.clone()),
            Some(l) if l == "(no output)" => Outcome::Prints(Vec::new()),
            _ => continue,
        };
        let words = shell_words(line).unwrap_or_else(|e| panic!("{rel}:{number}: {e}"));
        out.push(Example {
            place: format!("{rel}:{number}"),
            args: words[1..].to_vec(),
            outcome,
        });
    }
    out
}

#[test]
fn the_scanner_finds_commands_and_outputs() {
    assert_eq!(
        shell_words(r#"sched next --trigger '{"a": 1}' --tz "Europe/Berlin"  x"#).unwrap(),
        [
            "sched",
            "next",
            "--trigger",
            r#"{"a": 1}"#,
            "--tz",
            "Europe/Berlin",
            "x"
        ]
    );
    assert!(shell_words("sched 'open").is_err());
    let readme = examples_in("README.md");
    assert!(
        !readme.is_empty(),
        "README.md has no sched next example with output"
    );
    let guide = examples_in("docs/triggers.md");
    assert!(
        guide.len() >= 30,
        "docs/triggers.md: found only {} examples",
        guide.len()
    );
    let fails = guide
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Fails(_)))
        .count();
    assert!(
        fails >= 8,
        "docs/triggers.md: found only {fails} error examples"
    );
    let silent = guide
        .iter()
        .filter(|e| e.outcome == Outcome::Prints(Vec::new()))
        .count();
    assert!(silent >= 1, "docs/triggers.md: no (no output) example");
    for e in readme.iter().chain(&guide) {
        assert_eq!(e.args[0], "next", "{}", e.place);
        assert!(e.args.iter().any(|a| a == "--now"), "{}: no --now", e.place);
    }
}

#[test]
fn documented_outputs_are_what_sched_next_prints() {
    let mut failures = Vec::new();
    let mut count = 0;
    for rel in ["README.md", "docs/triggers.md"] {
        for e in examples_in(rel) {
            count += 1;
            let out = Command::new(env!("CARGO_BIN_EXE_sched"))
                .args(&e.args)
                .output()
                .expect("run the sched binary");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let got: Vec<&str> = stdout.lines().collect();
            let ok = match &e.outcome {
                Outcome::Prints(lines) => out.status.code() == Some(0) && got == *lines,
                Outcome::Fails(message) => {
                    out.status.code() == Some(2) && got.is_empty() && stderr.trim() == message
                }
            };
            if !ok {
                failures.push(format!(
                    "{}: exit {:?}\n  expected {:?}\n  got      {:?}\n  stderr   {}",
                    e.place,
                    out.status.code(),
                    e.outcome,
                    got,
                    stderr.trim()
                ));
            }
        }
    }
    println!("{count} documented sched next examples checked");
    assert!(
        failures.is_empty(),
        "{} of {count} documented examples differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
