//! Parsing the plain output of a libtest harness (`test NAME ... ok`).
//!
//! libtest's JSON format is unstable, so the VM tier runs guest binaries with `--test-threads=1`
//! (one complete line per test) and reads the pretty format.

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `ok`
    Passed,
    /// `FAILED`
    Failed,
    /// `ignored` — a defect in this project: an ignored test proves nothing.
    Ignored,
}

/// One test's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// The test's path inside its binary, e.g. `heaps::system_heap_exists`.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// The per-test results in `output`, in order. Lines that are not result lines are skipped.
pub fn parse(output: &str) -> Vec<TestResult> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (name, verdict) = rest.rsplit_once(" ... ")?;
            let outcome = match verdict.trim() {
                "ok" => Outcome::Passed,
                "FAILED" => Outcome::Failed,
                v if v.starts_with("ignored") => Outcome::Ignored,
                _ => return None,
            };
            Some(TestResult {
                name: name.trim().to_owned(),
                outcome,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_verdict() {
        let out = "\nrunning 3 tests\ntest a::b ... ok\ntest c ... FAILED\ntest d ... ignored, needs x\n\
                   \ntest result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out\n";
        let r = parse(out);
        assert_eq!(
            r,
            vec![
                TestResult {
                    name: "a::b".into(),
                    outcome: Outcome::Passed
                },
                TestResult {
                    name: "c".into(),
                    outcome: Outcome::Failed
                },
                TestResult {
                    name: "d".into(),
                    outcome: Outcome::Ignored
                },
            ]
        );
    }

    #[test]
    fn a_test_that_prints_does_not_confuse_the_parser() {
        // With --test-threads=1 and captured output, stray prints only appear in the failure
        // section, never on a result line; a line that merely looks similar is not a result.
        let out = "test x ... ok\ntest output ... something else\n---- c stdout ----\n";
        assert_eq!(parse(out).len(), 1);
    }
}
