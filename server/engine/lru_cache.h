// A small least-recently-used map from keys to shared values.
#ifndef RNNSERVE_SERVER_ENGINE_LRU_CACHE_H_
#define RNNSERVE_SERVER_ENGINE_LRU_CACHE_H_

#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace rnnserve::engine {

// Holds at most `capacity` values; inserting past it drops the least recently
// used. Values are shared, so a value dropped while someone uses it lives on
// until they let go. Thread-safe.
template <typename Key, typename Value>
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // The value for `key`, marked most recently used; null if absent.
  std::shared_ptr<const Value> Find(const Key& key) {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }

  // Inserts `value` unless `key` is present already; returns the value now
  // cached for `key`, so that racing inserters all use the same one.
  std::shared_ptr<const Value> Insert(const Key& key,
                                      std::shared_ptr<const Value> value) {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(key);
    if (it != index_.end()) return it->second->second;
    order_.emplace_front(key, std::move(value));
    index_.emplace(key, order_.begin());
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return order_.front().second;
  }

  size_t size() const {
    absl::MutexLock lock(&mu_);
    return order_.size();
  }

 private:
  using Entry = std::pair<Key, std::shared_ptr<const Value>>;

  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::list<Entry> order_ ABSL_GUARDED_BY(mu_);  // Most recent first.
  std::map<Key, typename std::list<Entry>::iterator> index_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_LRU_CACHE_H_
