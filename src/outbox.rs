//! What an instance learned about the fleet and has not yet published to its group.
//!
//! The credential ledger, the fleet context and the peer index each learn facts that
//! the other instances of a consumer group need (see [`crate::kafka::shared_topic`]).
//! Each keeps them in an outbox that stays closed until the service turns sharing on,
//! so `replay` and `demo`, which share with nobody, queue nothing.

/// Facts learned here and not yet handed out for publishing.
#[derive(Debug)]
pub struct Outbox<T>(Option<Vec<T>>);

impl<T> Default for Outbox<T> {
    fn default() -> Self {
        Outbox(None)
    }
}

impl<T> Outbox<T> {
    /// Opens the outbox: from now on [`Outbox::queue`] keeps what it is given.
    pub fn open(&mut self) {
        self.0.get_or_insert_with(Vec::new);
    }

    /// Opens the outbox with what was learned before sharing began (replacing anything
    /// queued), so that it reaches the group too.
    pub fn open_with(&mut self, known: impl IntoIterator<Item = T>) {
        self.0 = Some(known.into_iter().collect());
    }

    /// Queues the fact `make` builds, if the outbox is open (a closed one does not
    /// build it).
    pub fn queue(&mut self, make: impl FnOnce() -> T) {
        if let Some(queued) = &mut self.0 {
            queued.push(make());
        }
    }

    /// Whether sharing is on (the outbox keeps what it is given).
    pub fn is_open(&self) -> bool {
        self.0.is_some()
    }

    /// Everything queued since the last call, to publish.
    pub fn take(&mut self) -> Vec<T> {
        self.0.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_outbox_keeps_nothing_and_an_open_one_hands_out_each_fact_once() {
        let mut outbox = Outbox::default();
        outbox.queue(|| 1);
        assert!(outbox.take().is_empty());
        assert!(!outbox.is_open());
        outbox.open();
        assert!(outbox.is_open());
        outbox.queue(|| 2);
        outbox.queue(|| 3);
        assert_eq!(outbox.take(), [2, 3]);
        assert!(outbox.take().is_empty());
        outbox.open_with([4]);
        outbox.queue(|| 5);
        assert_eq!(outbox.take(), [4, 5]);
    }
}
