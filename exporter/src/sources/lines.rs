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
    pub fn push(&mut self, mut chunk: &[u8], mut f: impl FnMut(&[u8])) {
        while let Some(i) = memchr::memchr(b'\n', chunk) {
            let piece = &chunk[..i];
            if self.skipping {
                self.skipping = false;
            } else if self.partial.is_empty() {
                self.emit(piece, &mut f);
            } else {
                let room = (self.max + 1).saturating_sub(self.partial.len());
                self.partial
                    .extend_from_slice(&piece[..room.min(piece.len())]);
                let line = std::mem::take(&mut self.partial);
                f(&line);
                self.partial = line;
                self.partial.clear();
            }
            chunk = &chunk[i + 1..];
        }
        if chunk.is_empty() || self.skipping {
            return;
        }
        if self.partial.len() + chunk.len() > self.max {
            let room = (self.max + 1).saturating_sub(self.partial.len());
            self.partial
                .extend_from_slice(&chunk[..room.min(chunk.len())]);
            let line = std::mem::take(&mut self.partial);
            f(&line);
            self.partial = line;
            self.partial.clear();
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(chunk);
        }
    }

    fn emit(&mut self, line: &[u8], f: &mut impl FnMut(&[u8])) {
        f(&line[..line.len().min(self.max + 1)]);
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
}
