//! Campaign documents through the store's interface, on every engine.

use super::*;

fn record(id: &str, json: &str, state: DocumentState) -> DocumentRecord {
    DocumentRecord {
        id: id.to_owned(),
        document: json.to_owned(),
        state,
        published_at: 0,
        published_by: "api".to_owned(),
    }
}

fn documents_keep_their_state_and_files_across_restarts(place: &Place) {
    let store = place.open();
    let documents = store.documents().expect("every engine keeps documents");
    assert!(documents.document("news").unwrap().is_none());
    let files = vec![
        ("00-a.txt".to_owned(), b"A".to_vec()),
        ("01-b.txt".to_owned(), b"B".to_vec()),
    ];
    let first = record("news", r#"{"v": 1}"#, DocumentState::Paused);
    assert!(documents.publish_document(&first, &files).unwrap());
    assert!(!documents.publish_document(&first, &files).unwrap());
    assert!(documents
        .publish_document(&record("other", "{}", DocumentState::Active), &[])
        .unwrap());
    drop(store);

    let store = place.open();
    let documents = store.documents().unwrap();
    let stored = documents.document("news").unwrap().unwrap();
    assert_eq!(stored.state, DocumentState::Paused);
    assert_eq!(stored.document, r#"{"v": 1}"#);
    assert!(stored.published_at > 0);
    assert_eq!(documents.document_files("news").unwrap(), files);
    assert!(documents.document_files("other").unwrap().is_empty());
    let ids = |state| -> Vec<String> {
        let found = documents.documents_in(state).unwrap();
        found.into_iter().map(|r| r.id).collect()
    };
    assert_eq!(ids(DocumentState::Paused), vec!["news".to_owned()]);
    assert_eq!(ids(DocumentState::Active), vec!["other".to_owned()]);

    assert!(documents
        .set_document_state("news", DocumentState::Active)
        .unwrap());
    assert!(!documents
        .set_document_state("nothing", DocumentState::Active)
        .unwrap());
    assert_eq!(
        ids(DocumentState::Active),
        vec!["news".to_owned(), "other".to_owned()]
    );
    // A changed document keeps its state (unless done) and replaces all its files.
    let newer = vec![("00-c.txt".to_owned(), b"C".to_vec())];
    let second = record("news", r#"{"v": 2}"#, DocumentState::Paused);
    assert!(documents.publish_document(&second, &newer).unwrap());
    assert_eq!(documents.document_files("news").unwrap(), newer);
    assert_eq!(
        documents.document("news").unwrap().unwrap().state,
        DocumentState::Active
    );
    documents
        .set_document_state("news", DocumentState::Done)
        .unwrap();
    let third = record("news", r#"{"v": 3}"#, DocumentState::Active);
    assert!(documents.publish_document(&third, &newer).unwrap());
    assert_eq!(
        documents.document("news").unwrap().unwrap().state,
        DocumentState::Active,
        "a changed done document is active again"
    );
    documents
        .set_document_state("news", DocumentState::Cancelled)
        .unwrap();
    drop(store);

    let store = place.open();
    let documents = store.documents().unwrap();
    assert_eq!(
        ids_in(documents, DocumentState::Cancelled),
        vec!["news".to_owned()]
    );
}

fn ids_in(documents: &dyn CampaignDocuments, state: DocumentState) -> Vec<String> {
    let found = documents.documents_in(state).unwrap();
    found.into_iter().map(|r| r.id).collect()
}

fn a_store_copy_carries_the_documents_with_their_files_and_state(place: &Place) {
    let from = place.open();
    let documents = from.documents().unwrap();
    let files = vec![("00-body.txt".to_owned(), b"Hello".to_vec())];
    documents
        .publish_document(
            &record("made", r#"{"v": 1}"#, DocumentState::Paused),
            &files,
        )
        .unwrap();
    documents
        .publish_document(&record("gone", "{}", DocumentState::Active), &[])
        .unwrap();
    documents
        .set_document_state("gone", DocumentState::Cancelled)
        .unwrap();
    let target = sled_place();
    let to = target.open();
    let report = crate::store::transfer::copy_store(&from, &to, None).unwrap();
    assert_eq!(report.documents, 2);
    let copied = to.documents().unwrap();
    let made = copied.document("made").unwrap().unwrap();
    assert_eq!(made.state, DocumentState::Paused);
    assert_eq!(made.document, r#"{"v": 1}"#);
    assert_eq!(copied.document_files("made").unwrap(), files);
    assert_eq!(
        copied.document("gone").unwrap().unwrap().state,
        DocumentState::Cancelled
    );
}

suite!(
    documents_keep_their_state_and_files_across_restarts,
    a_store_copy_carries_the_documents_with_their_files_and_state
);
