//! One mail transaction per [`Session::send`]: RSET (from the second message on), MAIL FROM,
//! RCPT TO for every recipient, DATA and the body, pipelined in one write when the server
//! offers PIPELINING. Replies are collected in a [`Transaction`], not turned into errors.

use super::body::{encode_chunk, encode_data};
use super::client::Session;
use super::error::{Phase, SmtpError};
use super::reply::{EnhancedCode, Reply};

/// Sender and recipients of one message (addresses without angle brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Return path; empty for the null sender `<>`.
    pub mail_from: String,
    /// Recipients, at least one.
    pub rcpt_to: Vec<String>,
}

/// Every reply of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Reply to MAIL FROM. When the message exceeds the server's advertised SIZE it is not
    /// sent at all and this holds a synthetic `552 5.3.4` reply.
    pub mail_from: Reply,
    /// Reply to each RCPT TO, in envelope order; `None` if never sent (MAIL failed, or the
    /// session closed first).
    pub recipients: Vec<Option<Reply>>,
    /// Reply to the DATA command (354 when the server wants the body).
    pub data: Option<Reply>,
    /// Final reply after the terminating dot.
    pub data_end: Option<Reply>,
    /// The 421 that closed the session before the transaction finished; it decides every
    /// recipient not decided by an earlier reply.
    pub aborted_by: Option<Reply>,
}

impl Transaction {
    fn new(mail_from: Reply, recipients: usize) -> Self {
        Transaction {
            mail_from,
            recipients: vec![None; recipients],
            data: None,
            data_end: None,
            aborted_by: None,
        }
    }

    /// The reply that decides recipient `index`: the MAIL failure, else its RCPT failure,
    /// else the DATA failure, else the final reply (or the 421 that cut the transaction).
    pub fn outcome_for(&self, index: usize) -> &Reply {
        let fallback = self.aborted_by.as_ref().unwrap_or(&self.mail_from);
        if !self.mail_from.is_completion() {
            return &self.mail_from;
        }
        match self.recipients.get(index) {
            Some(Some(rcpt)) if !rcpt.is_completion() => return rcpt,
            Some(Some(_)) => {}
            _ => return fallback,
        }
        match &self.data {
            Some(data) if data.code != 354 => data,
            // BDAT has no DATA step: its reply is the final one.
            Some(_) | None => self.data_end.as_ref().unwrap_or(fallback),
        }
    }

    /// True when the server took the message for at least one recipient.
    pub fn accepted(&self) -> bool {
        self.mail_from.is_completion()
            && self.recipients.iter().flatten().any(Reply::is_completion)
            && self.data_end.as_ref().is_some_and(Reply::is_completion)
    }

    fn any_recipient_accepted(&self) -> bool {
        self.recipients.iter().flatten().any(Reply::is_completion)
    }
}

/// Why an address cannot go into a command line, if it cannot.
fn address_problem(address: &str) -> Option<&'static str> {
    if address.len() > 512 {
        Some("longer than 512 bytes")
    } else if address.bytes().any(|b| b < 0x20 || b == 0x7f) {
        Some("contains a control character (CR, LF, NUL…)")
    } else if address.contains(['<', '>']) {
        Some("contains an angle bracket")
    } else {
        None
    }
}

impl Session {
    /// Runs one mail transaction: `message` (headers and body, any line endings) to
    /// `envelope`'s recipients.
    ///
    /// Replies to MAIL, RCPT and DATA come back in the [`Transaction`], whatever their code. A
    /// 421 is recorded, makes the session unusable and still returns `Ok`. A message larger
    /// than the server's advertised SIZE is not sent: the transaction holds a synthetic
    /// `552 5.3.4` MAIL reply and the session stays usable. Errors: an invalid envelope
    /// ([`SmtpError::InvalidAddress`], nothing sent, session still usable), or a connection
    /// failure (timeout, I/O, closed, protocol), after which the session is unusable.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Transaction, SmtpError> {
        if !self.usable {
            return Err(SmtpError::Unusable {
                host: self.conn.host().to_owned(),
            });
        }
        let params = self.mail_params(envelope, message)?;
        let chunked =
            self.chunking && self.caps.chunking && self.caps.pipelining && self.pipelining;
        let size = if chunked {
            encode_chunk(message, &mut self.data_buf);
            self.data_buf.len()
        } else {
            encode_data(message, &mut self.data_buf);
            self.data_buf.len() - 3
        };
        if let Some(limit) = self.caps.size.filter(|&limit| limit > 0) {
            if size as u64 > limit {
                return Ok(too_large(size, limit, envelope.rcpt_to.len()));
            }
        }
        let size = size.to_string();
        let mut mail_params = vec![">"];
        if self.caps.size.is_some() {
            mail_params.extend([" SIZE=", size.as_str()]);
        }
        mail_params.extend(params);
        let result = if chunked {
            self.send_chunked(envelope, &mail_params, message.len())
                .await
        } else if self.pipelining && self.caps.pipelining {
            self.send_pipelined(envelope, &mail_params, message.len())
                .await
        } else {
            self.send_stepwise(envelope, &mail_params, message.len())
                .await
        };
        match result {
            Ok(transaction) => {
                self.messages_sent += 1;
                Ok(transaction)
            }
            Err(error) => {
                self.usable = false;
                Err(error)
            }
        }
    }

    /// Checks the envelope and picks the MAIL FROM parameters besides SIZE.
    fn mail_params(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<Vec<&'static str>, SmtpError> {
        let invalid = |address: &str, reason| SmtpError::InvalidAddress {
            host: self.conn.host().to_owned(),
            address: address.to_owned(),
            reason,
        };
        if envelope.rcpt_to.is_empty() {
            return Err(invalid("", "the envelope has no recipient"));
        }
        if envelope.rcpt_to.iter().any(String::is_empty) {
            return Err(invalid("", "empty recipient address"));
        }
        let addresses = std::iter::once(&envelope.mail_from).chain(&envelope.rcpt_to);
        let mut utf8 = false;
        for address in addresses {
            if let Some(reason) = address_problem(address) {
                return Err(invalid(address, reason));
            }
            if !address.is_ascii() {
                if !self.caps.smtputf8 {
                    return Err(invalid(address, "non-ASCII, and no SMTPUTF8 offered"));
                }
                utf8 = true;
            }
        }
        let mut params = Vec::new();
        if self.caps.eight_bit_mime && !message.is_ascii() {
            params.push(" BODY=8BITMIME");
        }
        if utf8 {
            params.push(" SMTPUTF8");
        }
        Ok(params)
    }

    /// Queues `[RSET] MAIL RCPT…` for a pipelined write; true when RSET went first (not
    /// before a connection's first transaction).
    fn queue_pipelined_envelope(&mut self, envelope: &Envelope, mail_params: &[&str]) -> bool {
        let rset = std::mem::replace(&mut self.needs_rset, true);
        if rset {
            self.conn.command(&["RSET"]);
        }
        self.queue_envelope(envelope, mail_params);
        rset
    }

    fn queue_envelope(&mut self, envelope: &Envelope, mail_params: &[&str]) {
        let mut mail = vec!["MAIL FROM:<", envelope.mail_from.as_str()];
        mail.extend_from_slice(mail_params);
        self.conn.command(&mail);
        for rcpt in &envelope.rcpt_to {
            self.conn.command(&["RCPT TO:<", rcpt, ">"]);
        }
    }

    /// Reads the RSET reply: `Ok(Some(t))` when a 421 ended the session.
    async fn rset_reply(&mut self, recipients: usize) -> Result<Option<Transaction>, SmtpError> {
        let reply = self
            .conn
            .read_reply(Phase::Rset, self.timeouts.rset)
            .await?;
        if reply.code == 421 {
            let mut transaction = Transaction::new(reply.clone(), recipients);
            self.abort(&mut transaction, reply);
            return Ok(Some(transaction));
        }
        if !reply.is_completion() {
            return Err(self.rejected(Phase::Rset, reply));
        }
        Ok(None)
    }

    async fn send_pipelined(
        &mut self,
        envelope: &Envelope,
        mail_params: &[&str],
        message_len: usize,
    ) -> Result<Transaction, SmtpError> {
        let rset = self.queue_pipelined_envelope(envelope, mail_params);
        self.conn.command(&["DATA"]);
        self.conn
            .flush(Phase::MailFrom, self.timeouts.mail_from)
            .await?;
        let limits = self.timeouts;
        let mut transaction = match self.envelope_replies(rset, envelope.rcpt_to.len()).await? {
            Ok(transaction) => transaction,
            Err(closed) => return Ok(closed),
        };
        let mail = transaction.mail_from.clone();
        let data = self.conn.read_reply(Phase::Data, limits.data).await?;
        transaction.data = Some(data.clone());
        if self.closes(&mut transaction, &data) || data.code != 354 {
            return Ok(transaction);
        }
        let nothing_to_send = !mail.is_completion() || !transaction.any_recipient_accepted();
        self.send_body(&mut transaction, message_len, nothing_to_send)
            .await?;
        Ok(transaction)
    }

    /// Reads the replies to a pipelined `[RSET] MAIL RCPT…`: `Ok(Err(t))` when a 421 ended
    /// the session on the way (`t` says so), else the transaction so far.
    async fn envelope_replies(
        &mut self,
        rset: bool,
        count: usize,
    ) -> Result<Result<Transaction, Transaction>, SmtpError> {
        if rset {
            if let Some(closed) = self.rset_reply(count).await? {
                return Ok(Err(closed));
            }
        }
        let limits = self.timeouts;
        let mail = self
            .conn
            .read_reply(Phase::MailFrom, limits.mail_from)
            .await?;
        let mut transaction = Transaction::new(mail.clone(), count);
        if self.closes(&mut transaction, &mail) {
            return Ok(Err(transaction));
        }
        for index in 0..count {
            let reply = self.conn.read_reply(Phase::RcptTo, limits.rcpt_to).await?;
            transaction.recipients[index] = Some(reply.clone());
            if self.closes(&mut transaction, &reply) {
                return Ok(Err(transaction));
            }
        }
        Ok(Ok(transaction))
    }

    /// CHUNKING with PIPELINING: `[RSET] MAIL RCPT… BDAT <n> LAST` and the message in one
    /// write, then every reply in order: one round trip per message.
    async fn send_chunked(
        &mut self,
        envelope: &Envelope,
        mail_params: &[&str],
        message_len: usize,
    ) -> Result<Transaction, SmtpError> {
        let rset = self.queue_pipelined_envelope(envelope, mail_params);
        let size = self.data_buf.len().to_string();
        self.conn.command(&["BDAT ", &size, " LAST"]);
        self.conn
            .note(|| format!("C: <message, {message_len} bytes>"));
        let chunk = std::mem::take(&mut self.data_buf);
        self.conn.raw(&chunk);
        self.data_buf = chunk;
        let limits = self.timeouts;
        self.conn.flush(Phase::Data, limits.data).await?;
        self.ack_replies_at_once();
        let mut transaction = match self.envelope_replies(rset, envelope.rcpt_to.len()).await? {
            Ok(transaction) => transaction,
            Err(closed) => return Ok(closed),
        };
        // The server reads the chunk whatever it thought of the envelope, and answers it.
        let last = self
            .conn
            .read_reply(Phase::DataEnd, limits.data_end)
            .await?;
        transaction.data_end = Some(last.clone());
        self.closes(&mut transaction, &last);
        Ok(transaction)
    }

    /// Asks the kernel to acknowledge the replies to come at once rather than after the
    /// delayed-ACK timer (`TCP_QUICKACK`, which the kernel clears again as the session goes
    /// back and forth, so it is set before each transaction's replies).
    ///
    /// A server that answers the envelope of a `BDAT … LAST` transaction before it has read
    /// the chunk (Postfix does) writes its final reply while the envelope replies are not yet
    /// acknowledged; when it has Nagle's algorithm on (Postfix does), that final reply waits
    /// for our delayed ACK, about 40 ms a message. Acknowledging at once removes the wait.
    fn ack_replies_at_once(&self) {
        if let Some(socket) = &self.socket {
            // Best effort: without it the transaction is only slower.
            let _ = rustix::net::sockopt::set_tcp_quickack(socket, true);
        }
    }

    async fn send_stepwise(
        &mut self,
        envelope: &Envelope,
        mail_params: &[&str],
        message_len: usize,
    ) -> Result<Transaction, SmtpError> {
        let count = envelope.rcpt_to.len();
        let limits = self.timeouts;
        if std::mem::replace(&mut self.needs_rset, true) {
            self.conn.command(&["RSET"]);
            self.conn.flush(Phase::Rset, limits.rset).await?;
            if let Some(closed) = self.rset_reply(count).await? {
                return Ok(closed);
            }
        }
        let mut mail = vec!["MAIL FROM:<", envelope.mail_from.as_str()];
        mail.extend_from_slice(mail_params);
        let reply = self
            .exchange(&mail, Phase::MailFrom, limits.mail_from)
            .await?;
        let mut transaction = Transaction::new(reply.clone(), count);
        if self.closes(&mut transaction, &reply) || !reply.is_completion() {
            return Ok(transaction);
        }
        for (index, rcpt) in envelope.rcpt_to.iter().enumerate() {
            let parts = ["RCPT TO:<", rcpt.as_str(), ">"];
            let reply = self.exchange(&parts, Phase::RcptTo, limits.rcpt_to).await?;
            transaction.recipients[index] = Some(reply.clone());
            if self.closes(&mut transaction, &reply) {
                return Ok(transaction);
            }
        }
        if !transaction.any_recipient_accepted() {
            return Ok(transaction);
        }
        let data = self.exchange(&["DATA"], Phase::Data, limits.data).await?;
        transaction.data = Some(data.clone());
        if self.closes(&mut transaction, &data) || data.code != 354 {
            return Ok(transaction);
        }
        self.send_body(&mut transaction, message_len, false).await?;
        Ok(transaction)
    }

    /// After a 354: writes the encoded body (or only the dot when `empty`) and reads the
    /// final reply into the transaction.
    async fn send_body(
        &mut self,
        transaction: &mut Transaction,
        message_len: usize,
        empty: bool,
    ) -> Result<(), SmtpError> {
        let limits = self.timeouts;
        if empty {
            self.conn.note(|| "C: .".to_owned());
            self.conn
                .write_all(b".\r\n", Phase::Data, limits.data)
                .await?;
        } else {
            self.conn
                .note(|| format!("C: <message, {message_len} bytes>"));
            let body = std::mem::take(&mut self.data_buf);
            let written = self.conn.write_all(&body, Phase::Data, limits.data).await;
            self.data_buf = body;
            written?;
        }
        let reply = self
            .conn
            .read_reply(Phase::DataEnd, limits.data_end)
            .await?;
        transaction.data_end = Some(reply.clone());
        self.closes(transaction, &reply);
        Ok(())
    }

    /// Marks the session unusable and records `reply` when it is a 421; true if it was.
    fn closes(&mut self, transaction: &mut Transaction, reply: &Reply) -> bool {
        if reply.code == 421 {
            self.abort(transaction, reply.clone());
            true
        } else {
            false
        }
    }

    fn abort(&mut self, transaction: &mut Transaction, reply: Reply) {
        self.usable = false;
        transaction.aborted_by = Some(reply);
    }
}

/// The transaction reported for a message over the server's SIZE limit (nothing sent).
fn too_large(size: usize, limit: u64, recipients: usize) -> Transaction {
    let enhanced = EnhancedCode {
        class: 5,
        subject: 3,
        detail: 4,
    };
    let text =
        format!("message of {size} bytes exceeds the server's SIZE limit of {limit} (not sent)");
    Transaction::new(Reply::new(552, Some(enhanced), text), recipients)
}
