//! Splitting a byte stream that arrives in chunks into lines, with bounded memory: the one
//! place that knows about partial lines at chunk ends and lines longer than the limit.

/// Bytes after the last newline wait here for the rest of their line.
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    /// The current line already went over the limit: its head was emitted, drop the rest.
    skipping: bool,
    max: usize,
}

impl LineSplitter {
    /// Lines longer than `max` bytes are cut: their first `max + 1` bytes are emitted (so the
    /// consumer sees them as too long and counts them) and the rest up to the newline dropped.
    pub fn new(max: usize) -> Self {
        Self {
            partial: Vec::new(),
            skipping: false,
            max,
        }
    }

    /// Feeds a chunk; calls `f` with each complete line (without `\n`).
    pub fn push(&mut self, chunk: &[u8], mut f: impl FnMut(&[u8])) {
        self.push_until(chunk, |l| {
            f(l);
            false
        });
    }

    /// [`LineSplitter::push`] that stops after a complete line for which `f` returns true;
    /// returns how many bytes of `chunk` it consumed (the rest is for the next call).
    pub fn push_until(&mut self, chunk: &[u8], mut f: impl FnMut(&[u8]) -> bool) -> usize {
        let mut rest = chunk;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let piece = &rest[..i];
            let stop = if self.skipping {
                self.skipping = false;
                false
            } else if self.partial.is_empty() {
                f(&piece[..piece.len().min(self.max + 1)])
            } else {
                let room = (self.max + 1).saturating_sub(self.partial.len());
                self.partial
                    .extend_from_slice(&piece[..room.min(piece.len())]);
                let line = std::mem::take(&mut self.partial);
                let stop = f(&line);
                self.partial = line;
                self.partial.clear();
                stop
            };
            rest = &rest[i + 1..];
            if stop {
                return chunk.len() - rest.len();
            }
        }
        if rest.is_empty() || self.skipping {
            return chunk.len();
        }
        if self.partial.len() + rest.len() > self.max {
            let room = (self.max + 1).saturating_sub(self.partial.len());
            self.partial
                .extend_from_slice(&rest[..room.min(rest.len())]);
            let line = std::mem::take(&mut self.partial);
            f(&line);
            self.partial = line;
            self.partial.clear();
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(rest);
        }
        chunk.len()
    }

    /// End of input: the last line, if it had no newline.
    pub fn finish(&mut self, mut f: impl FnMut(&[u8])) {
        if !self.partial.is_empty() && !self.skipping {
            let line = std::mem::take(&mut self.partial);
            f(&line);
        }
        self.reset();
    }

    /// Forgets a pending partial line (the file was truncated under it).
    pub fn reset(&mut self) {
        self.partial.clear();
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn lines_across_chunks() {
        let got = split(&[b"ab", b"c\nde", b"f\n\ngh"], 100);
        assert_eq!(
            got,
            vec![
                b"abc".to_vec(),
                b"def".to_vec(),
                b"".to_vec(),
                b"gh".to_vec()
            ]
        );
    }

    #[test]
    fn long_lines_are_cut_and_the_next_kept() {
        let got = split(&[b"0123", b"456789", b"abc\nok\n"], 4);
        assert_eq!(got, vec![b"01234".to_vec(), b"ok".to_vec()]);
        let got = split(&[b"0123456789\nok"], 4);
        assert_eq!(got, vec![b"01234".to_vec(), b"ok".to_vec()]);
        // A long last line without a newline is cut too.
        let got = split(&[b"ok\n", b"0123456789"], 4);
        assert_eq!(got, vec![b"ok".to_vec(), b"01234".to_vec()]);
    }

    /// Stopping after every line and resuming with the rest gives the same lines as `push`.
    #[test]
    fn push_until_resumes_where_it_stopped() {
        let text: &[u8] = b"a\nbb\n\nccccccccccccc\ndd\npartial-tail";
        for max in [4, 100] {
            for chunk in 1..text.len() {
                let mut whole = LineSplitter::new(max);
                let mut want = Vec::new();
                for c in text.chunks(chunk) {
                    whole.push(c, |l| want.push(l.to_vec()));
                }
                whole.finish(|l| want.push(l.to_vec()));
                let mut s = LineSplitter::new(max);
                let mut got = Vec::new();
                for c in text.chunks(chunk) {
                    let mut rest = c;
                    while !rest.is_empty() {
                        let used = s.push_until(rest, |l| {
                            got.push(l.to_vec());
                            true
                        });
                        assert!(used > 0);
                        rest = &rest[used..];
                    }
                }
                s.finish(|l| got.push(l.to_vec()));
                assert_eq!(got, want, "max {max}, chunks of {chunk}");
            }
        }
    }
}
