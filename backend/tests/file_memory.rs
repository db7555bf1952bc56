//! Decoding a program file allocates at most a small multiple of the file's
//! size, whatever the file says: sizes are never taken from the file and
//! trusted. Measured with a counting allocator (its own test binary, one
//! test, so nothing else allocates meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hepack_backend::file::{self, pb};
use hepack_backend::{Lowering, OpTimes};
use hepack_ir::testing::{random_graph, Rng, CONV, DENSE};
use hepack_passes::prune::{BatchPacking, Block};
use prost::Message;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Most bytes live at once while decoding, above what was live before.
fn decode_peak(bytes: &[u8]) -> usize {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let _ = std::hint::black_box(file::decode(bytes));
    PEAK.load(Ordering::SeqCst) - base
}

const FACTOR: usize = 16;

#[test]
fn decoding_allocates_a_bounded_multiple_of_the_file_size() {
    let batch = BatchPacking {
        block: Block::Column,
    };
    let g = random_graph(&[CONV, 5, 3, DENSE, 5, DENSE], 7, true);
    let (program, _) = batch.lower(&g, &OpTimes::default()).unwrap();
    let good = file::encode(&program).unwrap();
    let peak = decode_peak(&good);
    println!(
        "valid file: {} bytes, decoding peaked at {peak} bytes",
        good.len()
    );
    assert!(peak <= FACTOR * good.len() + 4096);

    // Hostile: a million one-byte ops claiming a huge output and many layers.
    let mut m = pb::ProgramFile::decode(good.as_slice()).unwrap();
    let ops = m.ops.as_mut().unwrap();
    let n = 1_000_000;
    ops.kind = vec![pb::OpKind::EncryptInput as i32; n];
    ops.layer = vec![0; n];
    ops.immediate = vec![0; n];
    ops.level = vec![0; n];
    ops.scale = vec![0.0; n];
    ops.size = vec![0; n];
    ops.last_use = vec![0; n];
    ops.args.clear();
    m.layout.as_mut().unwrap().outputs[0].shape = vec![1 << 20, 1 << 20];
    let hostile = m.encode_to_vec();
    let peak = decode_peak(&hostile);
    println!(
        "hostile file: {} bytes, decoding peaked at {peak} bytes",
        hostile.len()
    );
    assert!(peak <= FACTOR * hostile.len() + 4096);

    // Random corruptions of the valid file.
    let mut r = Rng(99);
    for _ in 0..200 {
        let mut bytes = good.clone();
        for _ in 0..1 + r.below(4) {
            let i = r.below(bytes.len());
            bytes[i] = r.next_u64() as u8;
        }
        let peak = decode_peak(&bytes);
        assert!(
            peak <= FACTOR * bytes.len() + 4096,
            "{peak} bytes for a {}-byte file",
            bytes.len()
        );
    }
}
