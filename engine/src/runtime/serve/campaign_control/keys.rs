//! The keys of a campaign sent over the API, checked before it is loaded: the files it names
//! must be among those sent (plain names: nothing of the server's disk is read for them),
//! secret files must be absolute paths on the server, and no secret may be inline.

use crate::api::control::NewFile;
use crate::api::Problem;
use toml::{Table, Value};

/// Keys naming a file sent with the campaign: section, whether an array of tables, key.
const CONTENT: &[(&str, bool, &str)] = &[
    ("campaign", false, "text"),
    ("campaign", false, "html"),
    ("campaign", false, "recipients"),
    ("variant", true, "text"),
    ("variant", true, "html"),
    ("bounces", false, "rules_file"),
    ("relay", false, "ca_file"),
    ("mx", false, "ca_file"),
];

/// Keys naming a secret's file on the server.
const SECRET_FILES: &[(&str, bool, &str)] = &[
    ("relay", false, "password_file"),
    ("relay", false, "token_file"),
    ("tracking", false, "key_file"),
    ("dkim", true, "key_file"),
];

/// Keys that would hold a secret itself (never accepted), with what to give instead.
const INLINE: &[(&str, bool, &str, &str)] = &[
    ("relay", false, "password", "password_file or password_env"),
    ("relay", false, "token", "token_file or token_env"),
    ("tracking", false, "key", "key_file or key_env"),
    ("dkim", true, "key", "key_file or key_env"),
    ("dkim", true, "private_key", "key_file or key_env"),
];

/// Keys never accepted over the API, with what to give instead: a campaign sent over the API
/// does not get to run programs on the server.
const REFUSED: &[(&str, bool, &str, &str)] = &[(
    "relay",
    false,
    "token_command",
    "a campaign sent over the API does not run commands on the server: give token_file or \
     token_env (kept fresh by a job on the server)",
)];

/// Checks the names of the files sent: plain names, each once.
pub(super) fn check_files(files: &[NewFile]) -> Result<(), Problem> {
    for (i, file) in files.iter().enumerate() {
        if !is_plain_name(&file.name) || file.name == "campaign.toml" {
            return Err(Problem::bad_field(
                format!("files[{i}].name"),
                format!(
                    "{:?} is not a plain file name (letters, digits, '.', '-', '_'; not campaign.toml)",
                    file.name
                ),
            ));
        }
        if files[..i].iter().any(|f| f.name == file.name) {
            return Err(Problem::bad_field(
                format!("files[{i}].name"),
                format!("{} is given twice", file.name),
            ));
        }
    }
    Ok(())
}

/// Checks the keys naming files and secrets; returns the list's file name. A text that is
/// not TOML passes here: the loader names its line.
pub(super) fn check_keys(text: &str, files: &[NewFile]) -> Result<Option<String>, Problem> {
    let Ok(table) = text.parse::<Table>() else {
        return Ok(None);
    };
    for &(section, array, key, instead) in INLINE {
        if let Some((name, _)) = values(&table, section, array, key).into_iter().next() {
            return Err(bad(
                text,
                &name,
                key,
                format!("secrets are never sent inline: give {instead} (on the server)"),
            ));
        }
    }
    for &(section, array, key, why) in REFUSED {
        if let Some((name, _)) = values(&table, section, array, key).into_iter().next() {
            return Err(bad(text, &name, key, why.to_owned()));
        }
    }
    for &(section, array, key) in SECRET_FILES {
        for (name, value) in values(&table, section, array, key) {
            let absolute = value.as_str().is_some_and(|p| p.starts_with('/'));
            if !absolute {
                return Err(bad(
                    text,
                    &name,
                    key,
                    "a secret's file is an absolute path on the server".to_owned(),
                ));
            }
        }
    }
    let mut list = None;
    for &(section, array, key) in CONTENT {
        for (name, value) in values(&table, section, array, key) {
            let Some(file) = value.as_str() else {
                continue;
            };
            let sent = files.iter().any(|f| f.name == file);
            if name == "campaign.recipients" && is_plain_name(file) {
                list = Some(file.to_owned());
                continue;
            }
            if !sent {
                return Err(bad(
                    text,
                    &name,
                    key,
                    format!("{file:?} is not one of the files sent (give it in files, by its plain name)"),
                ));
            }
        }
    }
    Ok(list)
}

/// The values of `key` in `section` (each entry of an array of tables), with their names.
fn values<'a>(table: &'a Table, section: &str, array: bool, key: &str) -> Vec<(String, &'a Value)> {
    let Some(found) = table.get(section) else {
        return Vec::new();
    };
    match (array, found) {
        (true, Value::Array(entries)) => entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| Some((format!("{section}[{i}].{key}"), entry.get(key)?)))
            .collect(),
        (false, Value::Table(inner)) => inner
            .get(key)
            .map(|value| vec![(format!("{section}.{key}"), value)])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A problem at key `name`, with the line of the text where `key` is set (the first such).
fn bad(text: &str, name: &str, key: &str, detail: String) -> Problem {
    let line = text.lines().position(|line| {
        line.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    });
    let detail = match line {
        Some(i) => format!("{name} (line {}): {detail}", i + 1),
        None => format!("{name}: {detail}"),
    };
    Problem::bad_field(name.to_owned(), detail)
}

/// A file name with nothing that reaches outside its folder.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> NewFile {
        NewFile {
            name: name.to_owned(),
            content: String::new(),
        }
    }

    #[test]
    fn inline_secrets_outside_files_and_relative_secret_files_are_refused_by_key_and_line() {
        let inline = "[campaign]\nid = \"x\"\n\n[relay]\nhost = \"h\"\npassword = \"hunter2\"\n";
        let problem = check_keys(inline, &[]).unwrap_err();
        let json = serde_json::to_string(&problem).unwrap();
        assert!(json.contains("relay.password (line 6)"), "{json}");
        let relative = "[[dkim]]\nkey_file = \"keys/a.pem\"\n";
        let json = serde_json::to_string(&check_keys(relative, &[]).unwrap_err()).unwrap();
        assert!(json.contains("dkim[0].key_file (line 2)"), "{json}");
        let outside = "[campaign]\ntext = \"/etc/passwd\"\nrecipients = \"list.csv\"\n";
        let json = serde_json::to_string(&check_keys(outside, &[]).unwrap_err()).unwrap();
        assert!(json.contains("campaign.text (line 2)"), "{json}");
        let fine = "[campaign]\ntext = \"body.txt\"\nrecipients = \"list.csv\"\n";
        assert_eq!(
            check_keys(fine, &[file("body.txt")]).unwrap(),
            Some("list.csv".to_owned())
        );
        let command = "[relay]\nhost = \"h\"\ntoken_command = [\"/bin/sh\", \"-c\", \"x\"]\n";
        let json = serde_json::to_string(&check_keys(command, &[]).unwrap_err()).unwrap();
        assert!(json.contains("relay.token_command (line 3)"), "{json}");
        let relative = "[relay]\nhost = \"h\"\ntoken_file = \"token.txt\"\n";
        let json = serde_json::to_string(&check_keys(relative, &[]).unwrap_err()).unwrap();
        assert!(json.contains("relay.token_file (line 3)"), "{json}");
        assert!(check_files(&[file("../x")]).is_err());
        assert!(check_files(&[file("a.txt"), file("a.txt")]).is_err());
    }
}
