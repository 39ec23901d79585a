//! `nimbusguard hpa CASES.json`: replays Kubernetes HPA reference cases (the layout of
//! `shared/hpa/README.md`) through `agents::hpa` and prints the computed results.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Reads the case file at `path` (one case object or an array), runs every case through
/// [`agents::hpa::cases::run_cases`] and returns the results as a pretty-printed JSON array.
///
/// Errors name the path: an unreadable file, or a JSON syntax error with its line and column.
pub fn render(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read HPA cases file {}", path.display()))?;
    let input: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not valid JSON: {e} (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    let results = agents::hpa::cases::run_cases(&input)
        .with_context(|| format!("cannot run the HPA cases of {}", path.display()))?;
    Ok(serde_json::to_string_pretty(&results)?)
}

/// `nimbusguard hpa CASES.json`: prints [`render`]'s JSON array to stdout.
pub fn run(path: &Path) -> anyhow::Result<()> {
    let json = render(path)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{json}").context("cannot write the HPA case results to stdout")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, content: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("nimbusguard-cmd-hpa-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = render(Path::new("/nonexistent/cases.json")).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/cases.json"),
            "{err:#}"
        );
    }

    #[test]
    fn syntax_error_reports_line_and_column() {
        let path = temp_file("bad.json", "[\n  {\"id\": \"x\",}\n]");
        let err = format!("{:#}", render(&path).unwrap_err());
        std::fs::remove_file(&path).ok();
        assert!(err.contains("bad.json") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn renders_one_case() {
        let case = r#"{"id": "c", "level": "legacy_clamp", "inputs": {"current_replicas": 1,
            "desired_replicas": 0, "min_replicas": 0, "max_replicas": 10},
            "expected": {"replicas": 0, "condition_reason": "DesiredWithinRange"}}"#;
        let path = temp_file("one.json", case);
        let out = render(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["replicas"], 0);
        assert_eq!(v[0]["condition_reason"], "DesiredWithinRange");
    }
}
