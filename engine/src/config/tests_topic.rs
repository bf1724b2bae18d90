//! `[campaign] topic`, `topic_name` and `unsubscribe` (issue 22): defaults, and each
//! mistake named by its key.

use super::*;

use super::tests::MINIMAL_CAMPAIGN;
use crate::store::{CampaignTopic, UnsubscribeScope};

/// Loads the minimal campaign with `lines` added to `[campaign]`; errors with the folder
/// shown as `DIR`.
fn load(lines: &str) -> Result<CampaignSettings, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.txt"), "Hello\n").unwrap();
    std::fs::write(dir.path().join("list.csv"), "email\nann@example.com\n").unwrap();
    let file = dir.path().join("news.toml");
    let text = MINIMAL_CAMPAIGN.replace(
        "recipients = \"list.csv\"\n",
        &format!("recipients = \"list.csv\"\n{lines}\n"),
    );
    std::fs::write(&file, text).unwrap();
    load_campaign(&file, None).map_err(|e| {
        e.to_string()
            .replace(&dir.path().display().to_string(), "DIR")
    })
}

#[test]
fn a_topic_unsubscribes_from_itself_unless_the_campaign_says_all() {
    assert_eq!(load("").unwrap().topic, None);
    assert_eq!(load("unsubscribe = \"all\"").unwrap().topic, None);
    assert_eq!(
        load("topic = \"digest\"").unwrap().topic,
        Some(CampaignTopic {
            topic: "digest".into(),
            name: "digest".into(),
            unsubscribe: UnsubscribeScope::Topic,
        })
    );
    let all = load("topic = \"digest\"\ntopic_name = \"Weekly digest\"\nunsubscribe = \"all\"")
        .unwrap()
        .topic
        .unwrap();
    assert_eq!(
        (all.name.as_str(), all.unsubscribe),
        ("Weekly digest", UnsubscribeScope::All)
    );
}

#[test]
fn topic_mistakes_name_their_key() {
    let cases = [
        ("topic = \"Weekly Digest\"", "campaign.topic = \"Weekly Digest\" is invalid: 1 to 64 of the characters a-z 0-9 _ -, starting with a letter or digit"),
        ("topic = \"digest\"\nunsubscribe = \"some\"", "campaign.unsubscribe = \"some\" is invalid: \"topic\" or \"all\""),
        ("unsubscribe = \"topic\"", "campaign.unsubscribe = \"topic\" is invalid: campaign.topic set too"),
        ("topic_name = \"Digest\"", "campaign.topic_name = \"Digest\" is invalid: campaign.topic set too"),
        ("topic = \"d\"\ntopic_name = \" \"", "campaign.topic_name must not be empty"),
    ];
    for (lines, want) in cases {
        let error = load(lines).unwrap_err();
        assert!(error.ends_with(want), "{lines}: {error}");
        assert!(error.contains("news.toml"), "{error}");
    }
}
