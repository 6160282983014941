//! The page row-group bound: which pages of a file share a row group, and when they are
//! encoded. Pages wait as the Arrow rows they arrived as until together they hold the bound
//! ([`super::PAGE_ROW_GROUP_BYTES`], `[output] page_row_group_bytes`), then they are encoded
//! into one row group and written out at once.
//!
//! Why the rows wait unencoded rather than in an open row group: an open row group of the
//! parquet crate 60.1 held a ZSTD compression and decompression context for every leaf column
//! from its first row to its end, allocated by zstd itself (about 101 kB a column, mostly the
//! decompression context the writer never uses) and invisible to `ArrowWriter::memory_size`,
//! which a bound on the encoders was measured by. A Call Details day has 76 leaf columns: 7.7
//! MB of contexts per day in flight while its row groups stayed open between pages, against a
//! bound of 1 MiB (`cargo bench --bench writer_memory` measures both). Since 60.2 a column
//! writer creates only its compression context, at its first compressed page, but that context
//! is still zstd's and still uncounted. Waiting rows are counted exactly
//! (`RecordBatch::get_array_memory_size`, the buffers they hold), and the contexts exist only
//! while a row group is encoded and written.
//!
//! A page waits with its buffers shrunk to its rows: Arrow builders reserve room for 1,024
//! values a column and grow by doubling, so a Call Details page of 100 sessions held about 3.7
//! times the bytes of its values. Shrinking gives that back to the allocator (a `realloc` in
//! place), and more pages share a row group within the same bound: fewer row groups, fewer
//! contexts created, better compression.

use std::sync::Arc;

use arrow::record_batch::{RecordBatch, RecordBatchOptions};

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
        let page = shrunk(page);
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

/// `page` with every buffer it alone owns shrunk to its contents (a buffer shared with another
/// array is left as it is: it is not freed by shrinking this page's view of it).
fn shrunk(page: RecordBatch) -> RecordBatch {
    let (schema, mut columns, rows) = page.into_parts();
    for column in &mut columns {
        if let Some(array) = Arc::get_mut(column) {
            array.shrink_to_fit();
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    // Cannot fail: the schema, columns and row count of a valid batch, put back unchanged but
    // for their buffers' spare capacity.
    RecordBatch::try_new_with_options(schema, columns, &options)
        .expect("a valid batch's own parts make a valid batch")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, ArrayRef, Int64Array, Int64Builder, StringArray, StringBuilder};
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
    fn a_page_waits_with_its_builders_spare_capacity_given_back() {
        // As the normalizers build pages: builders reserving room for 1,024 values, 100 used.
        let mut numbers = Int64Builder::with_capacity(1024);
        let mut names = StringBuilder::with_capacity(1024, 16 * 1024);
        for i in 0..100 {
            numbers.append_value(i);
            names.append_value(format!("agent-{i}"));
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![Arc::new(numbers.finish()), Arc::new(names.finish())];
        let built = RecordBatch::try_new(schema, columns).expect("batch");
        let reserved = built.get_array_memory_size();
        assert!(reserved > 8 * 1024 + 16 * 1024, "{reserved}");

        let mut pending = PendingPages::new(usize::MAX);
        assert_eq!(pending.push(built), None);
        // 800 bytes of numbers, 101 offsets (404 bytes) and 890 bytes of names, plus the arrays'
        // own structs: well under a tenth of what the builders held.
        assert!(
            pending.bytes() < 4 * 1024,
            "{} of {reserved}",
            pending.bytes()
        );
        let waiting = pending.take();
        let n = waiting[0].column(0).as_any().downcast_ref::<Int64Array>();
        assert_eq!(
            n.expect("Int64").values().to_vec(),
            (0..100).collect::<Vec<i64>>()
        );
        let names = waiting[0].column(1).as_any().downcast_ref::<StringArray>();
        assert_eq!(names.expect("Utf8").value(42), "agent-42");
    }

    #[test]
    fn a_zero_bound_gives_every_page_its_own_row_group() {
        let mut pending = PendingPages::new(0);
        let group = pending.push(page(&[7])).expect("at once");
        assert_eq!(first_values(&group), [7]);
        assert_eq!(pending.bytes(), 0);
    }
}
