//! What one group commit has already checked, so the writes of a batch skip repeated reads.
//!
//! Every item or call-record write first checks that its conversation exists and that the
//! writer still holds its lease, and an append reads the conversation's last position. In a
//! group commit (see [`HistoryWriter`](super::HistoryWriter)) the batch holds SQLite's write
//! lock from `BEGIN IMMEDIATE` to `COMMIT`, so no other connection changes anything meanwhile:
//! what the first write of a conversation learned holds for the rest of the batch, unless the
//! batch itself changes it. So the cache lives only while a group is open, and every write
//! that is not an item or call-record write (a lease, a deletion, an import) clears it.
//!
//! A session's turn is a dozen writes to one conversation: this takes each from about seven
//! statements to two (the insert and, once per batch, the conversation's `updated_at`).

use super::ConversationId;

/// See the module docs. Usually holds one conversation, so plain vectors.
#[derive(Debug, Default)]
pub(super) struct BatchCache {
    /// Conversations that exist, with the lease holder checked for them.
    checked: Vec<(ConversationId, Option<String>)>,
    /// The position the next appended item takes, per conversation.
    next_seq: Vec<(ConversationId, i64)>,
    /// Conversations whose `updated_at` this batch already set, and whether they have a title.
    touched: Vec<(ConversationId, bool)>,
}

impl BatchCache {
    /// Forgets everything (a group opened or closed, or a write that may change anything).
    pub(super) fn clear(&mut self) {
        self.checked.clear();
        self.next_seq.clear();
        self.touched.clear();
    }

    pub(super) fn is_checked(&self, conversation: &ConversationId, holder: Option<&str>) -> bool {
        self.checked
            .iter()
            .any(|(id, h)| id == conversation && h.as_deref() == holder)
    }

    pub(super) fn checked(&mut self, conversation: &ConversationId, holder: Option<&str>) {
        if !self.is_checked(conversation, holder) {
            self.checked
                .push((conversation.clone(), holder.map(str::to_owned)));
        }
    }

    pub(super) fn next_seq(&self, conversation: &ConversationId) -> Option<i64> {
        self.next_seq
            .iter()
            .find(|(id, _)| id == conversation)
            .map(|(_, seq)| *seq)
    }

    /// `seq` was taken by a committed write: the next append takes the one after it.
    pub(super) fn took_seq(&mut self, conversation: &ConversationId, seq: i64) {
        match self.next_seq.iter_mut().find(|(id, _)| id == conversation) {
            Some((_, next)) => *next = seq + 1,
            None => self.next_seq.push((conversation.clone(), seq + 1)),
        }
    }

    /// Whether this batch set the conversation's `updated_at` already, and it has a title
    /// unless `needs_title` (the item offers none).
    pub(super) fn is_touched(&self, conversation: &ConversationId, offers_title: bool) -> bool {
        self.touched
            .iter()
            .any(|(id, titled)| id == conversation && (*titled || !offers_title))
    }

    pub(super) fn touched(&mut self, conversation: &ConversationId, titled: bool) {
        match self.touched.iter_mut().find(|(id, _)| id == conversation) {
            Some((_, t)) => *t |= titled,
            None => self.touched.push((conversation.clone(), titled)),
        }
    }
}
