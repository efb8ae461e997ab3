#include "server/engine/segment_plan.h"

#include <algorithm>
#include <bit>
#include <cstddef>

namespace rnnserve::engine {
namespace {

// The cost model, in item-steps (one sequence through one step):
// - each step of an execution costs about two item-steps beyond its items
//   (measured on fashion_lstm: 1.45 us per step at batch 1, 0.67 us per item
//   and step at batch 16 to 64);
// - each execution costs 1/kSegmentShare of the block's real work. Its true
//   cost is small (a few us), but each has its state gathered and
//   scattered, and fewer, longer executions ran faster in BENCHMARKS.md, 6.
//   Counted relative to the work, it keeps a block to a handful of
//   segments whatever the lengths: 64 sequences of lengths 1..28 run in 5
//   segments with 15 % padding (in 7 pieces of step buckets, PlanBucketed),
//   64 random lengths 1..1000 in 6 with 13 %, 63 of length 1 and one of
//   1000 in 2 with none (PlanChained, before the cut into pieces of 64).
constexpr int64_t kStepCost = 2;
constexpr int64_t kSegmentShare = 32;

// Sets `order` to the indices of `steps`, longest first, stable.
void SortByLength(std::span<const int> steps, std::vector<int>& order) {
  order.resize(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) order[i] = static_cast<int>(i);
  if (std::all_of(steps.begin(), steps.end(),
                  [&](int s) { return s == steps.front(); })) {
    return;
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return steps[a] > steps[b]; });
}

// Fills s.lengths and s.active for the block [begin, end) of `order`.
void DistinctLengths(std::span<const int> steps, const std::vector<int>& order,
                     int begin, int end, SegmentScratch& s) {
  s.lengths.assign(1, 0);
  s.active.assign(1, end - begin);
  // Shortest first; the items of length >= L are a prefix of the block.
  for (int i = end - 1; i >= begin; --i) {
    if (steps[order[i]] != s.lengths.back()) {
      s.lengths.push_back(steps[order[i]]);
      s.active.push_back(i - begin + 1);
    }
  }
}

// Sets s.bounds to the indices into s.lengths where segments end, ascending.
// With padding, the cheapest cut under the cost model above (a dynamic
// program over the distinct lengths: quadratic in their number, which is
// at most the block's size).
void ChooseBounds(bool pad, SegmentScratch& s) {
  const int d = static_cast<int>(s.lengths.size()) - 1;
  s.bounds.clear();
  if (!pad) {
    for (int k = 1; k <= d; ++k) s.bounds.push_back(k);
    return;
  }
  int64_t work = 0;
  for (int k = 1; k <= d; ++k) {
    work += int64_t{s.lengths[k] - s.lengths[k - 1]} * s.active[k];
  }
  const int64_t segment_cost = std::max<int64_t>(1, work / kSegmentShare);
  s.cost.assign(d + 1, 0);
  s.previous.assign(d + 1, 0);
  for (int b = 1; b <= d; ++b) {
    s.cost[b] = -1;
    for (int a = 0; a < b; ++a) {
      // A segment from length a to b runs every item longer than length a.
      const int64_t c =
          s.cost[a] + segment_cost +
          int64_t{s.lengths[b] - s.lengths[a]} * (kStepCost + s.active[a + 1]);
      if (s.cost[b] < 0 || c < s.cost[b]) {
        s.cost[b] = c;
        s.previous[b] = a;
      }
    }
  }
  for (int b = d; b > 0; b = s.previous[b]) s.bounds.push_back(b);
  std::reverse(s.bounds.begin(), s.bounds.end());
}

// Adds the segment of the block at `begin` from s.lengths[from] to
// s.lengths[to] in pieces of at most `max_steps` steps; each piece runs the
// items not finished at its start (padded items drop out).
void AddPieces(int begin, int from, int to, int max_steps,
               const SegmentScratch& s, std::vector<Segment>& segments) {
  int start = s.lengths[from];
  int k = from + 1;  // The shortest length still running.
  while (start < s.lengths[to]) {
    while (s.lengths[k] <= start) ++k;
    const int steps = std::min(max_steps, s.lengths[to] - start);
    segments.push_back({begin, begin + s.active[k], start, steps});
    start += steps;
  }
}

// Adds the bucketed pieces of the block [begin, end) of `order` (see
// PlanBucketed): s.running[t] is how many of its items have more than t
// steps, s.cost[t] the cheapest way to reach step t, s.previous[t] where the
// piece that ends at t starts.
void AddBucketedPieces(std::span<const int> steps, std::span<const int> order,
                       int begin, int end, uint64_t buckets, SegmentScratch& s,
                       std::vector<Segment>& segments) {
  const int longest = steps[order[begin]];
  s.running.assign(longest, 0);
  int64_t work = 0;
  for (int i = begin; i < end; ++i) {
    // Items run longest first: the first k are those with more than t steps.
    for (int t = 0; t < steps[order[i]]; ++t) s.running[t] = i - begin + 1;
    work += steps[order[i]];
  }
  const int64_t segment_cost = std::max<int64_t>(1, work / kSegmentShare);
  const int last = longest + StepBucketAtLeast(buckets, 1) + 63;
  s.cost.assign(last + 1, -1);
  s.previous.assign(last + 1, 0);
  s.cost[0] = 0;
  for (int from = 0; from < longest; ++from) {
    if (s.cost[from] < 0) continue;
    for (uint64_t b = buckets; b != 0; b &= b - 1) {
      const int to = from + std::countr_zero(b) + 1;
      const int64_t c = s.cost[from] + segment_cost +
                        int64_t{to - from} * (kStepCost + s.running[from]);
      if (s.cost[to] < 0 || c < s.cost[to]) {
        s.cost[to] = c;
        s.previous[to] = from;
      }
    }
  }
  int best = longest;  // Where the last piece ends: at or past the longest.
  for (int t = longest; t <= last; ++t) {
    if (s.cost[t] >= 0 && (s.cost[best] < 0 || s.cost[t] < s.cost[best])) {
      best = t;
    }
  }
  const size_t first = segments.size();
  for (int to = best; to > 0; to = s.previous[to]) {
    const int from = s.previous[to];
    segments.push_back({begin, begin + s.running[from], from, to - from});
  }
  std::reverse(segments.begin() + first, segments.end());
}

}  // namespace

void PlanByLength(std::span<const int> steps, int max_batch,
                  std::vector<int>& order, std::vector<Segment>& segments) {
  SortByLength(steps, order);
  segments.clear();
  const int n = static_cast<int>(order.size());
  for (int i = 0; i < n; ++i) {
    const int length = steps[order[i]];
    if (i == 0 || length != segments.back().steps ||
        i - segments.back().begin == max_batch) {
      segments.push_back({i, i, 0, length});
    }
    segments.back().end = i + 1;
  }
}

void PlanChained(std::span<const int> steps, int max_batch, int max_steps,
                 bool pad, SegmentScratch& scratch, std::vector<int>& order,
                 std::vector<Segment>& segments) {
  SortByLength(steps, order);
  segments.clear();
  const int n = static_cast<int>(order.size());
  for (int begin = 0; begin < n; begin += max_batch) {
    const int end = std::min(n, begin + max_batch);
    DistinctLengths(steps, order, begin, end, scratch);
    ChooseBounds(pad, scratch);
    int from = 0;  // Index into scratch.lengths where the segment starts.
    for (int to : scratch.bounds) {
      AddPieces(begin, from, to, max_steps, scratch, segments);
      from = to;
    }
  }
}

int StepBucketAtMost(uint64_t buckets, int n) {
  const uint64_t below = n >= 64 ? ~uint64_t{0} : StepBucketBit(n + 1) - 1;
  return 64 - std::countl_zero((buckets | 1) & below);
}

int StepBucketAtLeast(uint64_t buckets, int n) {
  const uint64_t from = ~(StepBucketBit(n) - 1);
  const uint64_t b = (buckets | StepBucketBit(64)) & from;
  return std::countr_zero(b) + 1;
}

int BatchBucket(int n) {
  if (n <= 8) return std::bit_ceil(static_cast<unsigned>(std::max(n, 1)));
  if (n <= 64) return (n + 7) / 8 * 8;
  return (n + 63) / 64 * 64;
}

void FitStepBuckets(std::span<const int> steps, std::span<const int> order,
                    uint64_t buckets, std::vector<Segment>& segments,
                    std::vector<Segment>& fitted) {
  fitted.clear();
  for (const Segment& s : segments) {
    const int end = s.start + s.steps;
    int running = s.end - s.begin;  // Those with steps left at `start`.
    for (int start = s.start; start < end;) {
      // Items run longest first: the last ones finish first.
      while (steps[order[s.begin + running - 1]] <= start) --running;
      const int piece = StepBucketAtMost(buckets, end - start);
      fitted.push_back({s.begin, s.begin + running, start, piece});
      start += piece;
    }
  }
  segments.swap(fitted);
}

void PlanBucketed(std::span<const int> steps, int max_batch, uint64_t buckets,
                  SegmentScratch& scratch, std::vector<int>& order,
                  std::vector<Segment>& segments) {
  SortByLength(steps, order);
  segments.clear();
  const int n = static_cast<int>(order.size());
  for (int begin = 0; begin < n; begin += max_batch) {
    AddBucketedPieces(steps, order, begin, std::min(n, begin + max_batch),
                      buckets | 1, scratch, segments);
  }
}

}  // namespace rnnserve::engine
