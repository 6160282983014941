//! The page row-group bound: which pages of a file share a row group, and when they are
//! encoded. Pages wait as the Arrow rows they arrived as until together they hold the bound
//! ([`super::PAGE_ROW_GROUP_BYTES`], `[output] page_row_group_bytes`), then they are encoded
//! into one row group and written out at once.
//!
//! Why the rows wait unencoded rather than in an open row group: an open row group of the
//! parquet crate (60.1) holds a ZSTD compression and decompression context for every leaf
//! column from its first row to its end, allocated by zstd itself (about 101 kB a column,
//! mostly the decompression context the writer never uses) and invisible to
//! `ArrowWriter::memory_size`, which a bound on the encoders was measured by. A Call Details
//! day has 76 leaf columns: 7.7 MB of contexts per day in flight while its row groups stayed
//! open between pages, against a bound of 1 MiB (`cargo bench --bench writer_memory` measures
//! both). Waiting rows are counted exactly (`RecordBatch::get_array_memory_size`, the buffers
//! they hold), and the contexts exist only while a row group is encoded and written.

use arrow::record_batch::RecordBatch;

/// The pages of a file waiting for their row group, in arrival order.
#[derive(Debug)]
pub struct PendingPages {
    batches: Vec<RecordBatch>,
    bytes: usize,
    bound: usize,
}

impl PendingPages {
    /// Pages share a row group until their rows hold `bound` bytes (`0`: every page its own).
    pub fn new(bound: usize) -> Self {
        PendingPages {
            batches: Vec::new(),
            bytes: 0,
            bound,
        }
    }

    /// Adds a page. Once the waiting pages hold the bound, returns them all (this one last),
    /// to be encoded as one row group now; until then keeps it.
    pub fn push(&mut self, page: RecordBatch) -> Option<Vec<RecordBatch>> {
        self.bytes += page.get_array_memory_size();
        self.batches.push(page);
        (self.bytes >= self.bound).then(|| self.take())
    }

    /// Every waiting page, in arrival order (at the end of the file, or before rows of
    /// another kind are written after them).
    pub fn take(&mut self) -> Vec<RecordBatch> {
        self.bytes = 0;
        std::mem::take(&mut self.batches)
    }

    /// Bytes of the waiting pages' rows.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn page(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let column: ArrayRef = Arc::new(Int64Array::from(values.to_vec()));
        RecordBatch::try_new(schema, vec![column]).expect("batch")
    }

    fn first_values(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .map(|b| {
                let n = b.column(0).as_any().downcast_ref::<Int64Array>();
                n.expect("Int64").value(0)
            })
            .collect()
    }

    #[test]
    fn pages_wait_until_their_rows_hold_the_bound_then_leave_together_in_order() {
        // 100 Int64 values: 800 bytes of values (Arrow pads its buffers, so the count is
        // taken from the batch itself).
        let one = page(&[1; 100]).get_array_memory_size();
        let mut pending = PendingPages::new(3 * one);
        assert_eq!(pending.push(page(&[1; 100])), None);
        assert_eq!(pending.push(page(&[2; 100])), None);
        assert_eq!(pending.bytes(), 2 * one);
        let group = pending.push(page(&[3; 100])).expect("the bound is reached");
        assert_eq!(first_values(&group), [1, 2, 3]);
        assert_eq!(pending.bytes(), 0);
        assert_eq!(pending.push(page(&[4; 100])), None);
        assert_eq!(first_values(&pending.take()), [4]);
        assert!(pending.take().is_empty());
    }

    #[test]
    fn a_zero_bound_gives_every_page_its_own_row_group() {
        let mut pending = PendingPages::new(0);
        let group = pending.push(page(&[7])).expect("at once");
        assert_eq!(first_values(&group), [7]);
        assert_eq!(pending.bytes(), 0);
    }
}
