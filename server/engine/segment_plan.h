// How the items of one call, of different lengths, are cut into few
// executions. Plain C++ so that the choice can be tested without running
// anything. Private to the engine.
//
// A unidirectional recurrence is causal: a sequence's outputs up to its own
// last step do not depend on what follows. So sequences of different lengths
// may run together, each reading its result at its own last step, and a run
// may stop at any step and go on from the state it reached (as packed
// sequences do). A *segment* runs the still-unfinished items of a call from
// step `start` for `steps` steps, from the state the previous segment left;
// items with fewer steps left are zero-padded, which only classification
// may do (their final state is not exact, their outputs are).
#ifndef RNNSERVE_SERVER_ENGINE_SEGMENT_PLAN_H_
#define RNNSERVE_SERVER_ENGINE_SEGMENT_PLAN_H_

#include <cstdint>
#include <span>
#include <vector>

namespace rnnserve::engine {

struct Segment {
  int begin = 0;  // [begin, end) of the order: the items that run.
  int end = 0;
  int start = 0;  // The first of their steps that this segment runs.
  int steps = 0;  // Steps it runs; items with fewer left are padded.
  int rows = 0;   // Its batch: end - begin items, then rows of zeros.
};

// Reused from call to call so that planning allocates nothing.
struct SegmentScratch {
  std::vector<int> lengths;  // 0, then the distinct lengths, ascending.
  std::vector<int> active;   // active[k]: items of length >= lengths[k].
  std::vector<int64_t> cost;
  std::vector<int> previous;
  std::vector<int> bounds;
  std::vector<int> running;  // PlanBucketed: items with more than t steps.
};

// One segment per distinct length (up to `max_batch` items each), every one
// from step 0: what a bidirectional model needs, whose reverse direction must
// start at each sequence's true end. Sets `order` to the items' indices by
// length, longest first, in call order within one length.
void PlanByLength(std::span<const int> steps, int max_batch,
                  std::vector<int>& order, std::vector<Segment>& segments);

// Chained segments for a unidirectional model: the items, longest first, in
// blocks of up to `max_batch`; each block runs in segments that end at
// distinct lengths, each continuing the items of the previous one that are
// not finished. Without `pad`, a segment ends at every distinct length, so
// every item ends exactly at a segment's end (exact final states). With
// `pad`, segments are merged where the padding they add costs less than the
// execution they save (see kSegmentShare in the .cc). Segments longer than
// `max_steps` are cut into pieces: a long run is slower per step than a few
// short ones chained, and fewer lengths mean fewer shapes to prepare.
void PlanChained(std::span<const int> steps, int max_batch, int max_steps,
                 bool pad, SegmentScratch& scratch, std::vector<int>& order,
                 std::vector<Segment>& segments);

// Shapes are bounded (see dnnl_engine.cc): a run's step count is one of a
// few *step buckets*, given as a mask where bit s - 1 stands for s steps
// (so buckets are 1 to 64 steps, and 1 is always one), and its batch is
// padded with rows of zeros up to a batch bucket.
constexpr uint64_t StepBucketBit(int steps) {
  return uint64_t{1} << (steps - 1);
}
// 1, 2, 4, ..., 64: any step count is a chain of at most 7 of them.
constexpr uint64_t kPowerOfTwoSteps = 0x800000008000808bULL;

// The largest bucket <= n, for n >= 1.
int StepBucketAtMost(uint64_t buckets, int n);
// The smallest bucket >= n, for 1 <= n <= 64.
int StepBucketAtLeast(uint64_t buckets, int n);
// 1, 2, 4, 8, then multiples of 8 up to 64, then multiples of 64: at most
// one row in eight is padding beyond 8 rows.
int BatchBucket(int n);

// Rewrites `segments` (planned over `order` of `steps`) so that each runs a
// bucket's number of steps: each becomes a chain of buckets whose lengths
// add up to its own, largest first. Exact: every item still ends where a
// segment ends, and states carry from piece to piece.
void FitStepBuckets(std::span<const int> steps, std::span<const int> order,
                    uint64_t buckets, std::vector<Segment>& segments,
                    std::vector<Segment>& fitted);

// Chained pieces for classifying with a unidirectional model, each of a
// bucket's number of steps: the items, longest first, in blocks of up to
// `max_batch`; each block runs in pieces from step 0, each continuing the
// items of the previous one that are not finished, and zero-padding those
// that finish inside it; the last may run past the longest. The pieces are
// the cheapest chain under the cost model of PlanChained (a dynamic program
// over the steps: linear in the longest item's steps times the buckets).
void PlanBucketed(std::span<const int> steps, int max_batch, uint64_t buckets,
                  SegmentScratch& scratch, std::vector<int>& order,
                  std::vector<Segment>& segments);

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_SEGMENT_PLAN_H_
