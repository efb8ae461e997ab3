// ThreadSanitizer builds only: tells TSan what Debian's absl::Mutex,
// absl::CondVar and absl::Notification do, for every caller in the process.
//
// Debian's libabsl is not built with -fsanitize=thread, so TSan cannot see
// its locks (a compare-and-swap and a futex in uninstrumented code): every
// member that our code guards with an absl::Mutex would be reported as a
// race, and so would everything that gRPC (which locks absl::Mutex too)
// hands from one of its threads to another. Abseil annotates itself for TSan
// only when it is itself built with TSan; this library adds the same
// knowledge from outside. It defines the functions below under their own
// (mangled) names; linked before libabsl_synchronization (every target of
// a TSan build links it first, see tsan_annotations.cmake), it is what the
// dynamic linker binds every call to, from our code, gRPC or abseil itself.
// Each tells TSan "lock", "unlock", "release" or "acquire" around the real
// function, found with dlsym(RTLD_NEXT).
//
// Only the outermost call on a thread is told to TSan: abseil calls some of
// these functions itself (Notification::Notify locks its mutex), and those
// inner calls are its implementation. A blocking call that gives the mutex
// up and takes it back (CondVar::Wait, Mutex::Await) is told as "unlocked
// before, locked after"; in between TSan ignores the thread's memory
// accesses, so a Condition's function is not checked, as in abseil's own
// annotations. A mutex's destruction is told only when our code destroys
// it: gRPC frees its mutexes after hand-overs that TSan cannot see (atomic
// reference counts), which would be reported as races with their last
// unlock. Not covered: the inline Notification::HasBeenNotified() (it
// synchronises nothing for TSan) and ReleasableMutexLock::Release().
#include <dlfcn.h>
#include <link.h>
#include <sanitizer/tsan_interface.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

// The mangled names below spell Debian's inline namespace: stop the build if
// it changes rather than interpose nothing.
namespace absl_sync_tsan_check = absl::debian3;

namespace {

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

constexpr unsigned kRead = __tsan_mutex_read_lock;
constexpr unsigned kTry = __tsan_mutex_try_lock;
constexpr unsigned kFailed = __tsan_mutex_try_lock_failed;

// How many of the functions below this thread is inside.
thread_local int depth = 0;

// Marks a call of one of the functions below; outermost() is whether it is
// the thread's outermost one, the only one told to TSan.
class Call {
 public:
  Call() : outermost_(depth++ == 0) {}
  ~Call() { --depth; }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  bool outermost() const { return outermost_; }

 private:
  const bool outermost_;
};

// The definition the dynamic linker would have bound `symbol` to without
// this library.
void* Real(const char* symbol) {
  void* real = dlsym(RTLD_NEXT, symbol);
  if (real == nullptr) {
    std::fprintf(stderr, "absl_sync_tsan: no definition of %s after ours\n",
                 symbol);
    std::abort();
  }
  return real;
}

// The main program's code, where every instrumented function of ours is
// (our libraries are static): [begin, end).
uintptr_t program_begin = 0;
uintptr_t program_end = 0;

int FindProgram(dl_phdr_info* info, size_t, void*) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) != 0) {
      program_begin = info->dlpi_addr + segment.p_vaddr;
      program_end = program_begin + segment.p_memsz;
    }
  }
  return 1;  // The first object is the main program: stop there.
}

bool CalledFromProgram(void* return_address) {
  const auto pc = reinterpret_cast<uintptr_t>(return_address);
  return pc >= program_begin && pc < program_end;
}

// Each of the functions below, under its real name.
#define INTERPOSE(ret, name, symbol, ...)                                 \
  extern "C" __attribute__((visibility("default")))                       \
  ret name(__VA_ARGS__) __asm__(#symbol);                                 \
  using name##Type = ret (*)(__VA_ARGS__);                                \
  static name##Type Real##name() {                                        \
    static const auto real = reinterpret_cast<name##Type>(Real(#symbol)); \
    return real;                                                          \
  }                                                                       \
  extern "C" ret name(__VA_ARGS__)

// Lock(), ReaderLock(), LockWhen(cond) and its timed forms (which return
// holding the lock whatever they return).
template <typename F, typename... Args>
auto Take(Mutex* mu, unsigned flags, F real, Args... args) {
  Call call;
  if (call.outermost()) __tsan_mutex_pre_lock(mu, flags);
  struct Post {
    Mutex* mu;
    unsigned flags;
    bool annotate;
    ~Post() {
      if (annotate) __tsan_mutex_post_lock(mu, flags, 0);
    }
  } post{mu, flags, call.outermost()};
  return real(mu, args...);
}

// TryLock(), ReaderTryLock().
template <typename F>
bool TryTake(Mutex* mu, unsigned flags, F real) {
  Call call;
  if (call.outermost()) __tsan_mutex_pre_lock(mu, flags | kTry);
  const bool locked = real(mu);
  if (call.outermost()) {
    __tsan_mutex_post_lock(mu, flags | kTry | (locked ? 0 : kFailed), 0);
  }
  return locked;
}

// Unlock(), ReaderUnlock().
template <typename F>
void GiveUp(Mutex* mu, unsigned flags, F real) {
  Call call;
  if (call.outermost()) __tsan_mutex_pre_unlock(mu, flags);
  real(mu);
  if (call.outermost()) __tsan_mutex_post_unlock(mu, flags);
}

// CondVar::Wait(mu) and Mutex::Await(cond), and their timed forms: called
// holding `mu`, they give it up while they wait.
template <typename F, typename Self, typename... Args>
auto Wait(Mutex* mu, F real, Self* self, Args... args) {
  Call call;
  if (call.outermost()) __tsan_mutex_pre_unlock(mu, 0);
  struct Post {
    Mutex* mu;
    bool annotate;
    ~Post() {
      if (!annotate) return;
      __tsan_mutex_post_unlock(mu, 0);
      __tsan_mutex_pre_lock(mu, 0);
      __tsan_mutex_post_lock(mu, 0, 0);
    }
  } post{mu, call.outermost()};
  return real(self, args...);
}

}  // namespace

INTERPOSE(void, MutexLock, _ZN4absl7debian35Mutex4LockEv, Mutex* mu) {
  Take(mu, 0, RealMutexLock());
}
INTERPOSE(void, MutexReaderLock, _ZN4absl7debian35Mutex10ReaderLockEv,
          Mutex* mu) {
  Take(mu, kRead, RealMutexReaderLock());
}
INTERPOSE(void, MutexLockWhen,
          _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE, Mutex* mu,
          const Condition& cond) {
  Take(mu, 0, RealMutexLockWhen(), cond);
}
INTERPOSE(
    bool, MutexLockWhenWithTimeout,
    _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
    Mutex* mu, const Condition& cond, Duration timeout) {
  return Take(mu, 0, RealMutexLockWhenWithTimeout(), cond, timeout);
}
INTERPOSE(
    bool, MutexLockWhenWithDeadline,
    _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
    Mutex* mu, const Condition& cond, Time deadline) {
  return Take(mu, 0, RealMutexLockWhenWithDeadline(), cond, deadline);
}
INTERPOSE(void, MutexReaderLockWhen,
          _ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE, Mutex* mu,
          const Condition& cond) {
  Take(mu, kRead, RealMutexReaderLockWhen(), cond);
}
INTERPOSE(bool, MutexTryLock, _ZN4absl7debian35Mutex7TryLockEv, Mutex* mu) {
  return TryTake(mu, 0, RealMutexTryLock());
}
INTERPOSE(bool, MutexReaderTryLock, _ZN4absl7debian35Mutex13ReaderTryLockEv,
          Mutex* mu) {
  return TryTake(mu, kRead, RealMutexReaderTryLock());
}
INTERPOSE(void, MutexUnlock, _ZN4absl7debian35Mutex6UnlockEv, Mutex* mu) {
  GiveUp(mu, 0, RealMutexUnlock());
}
INTERPOSE(void, MutexReaderUnlock, _ZN4absl7debian35Mutex12ReaderUnlockEv,
          Mutex* mu) {
  GiveUp(mu, kRead, RealMutexReaderUnlock());
}

INTERPOSE(void, MutexAwait, _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE,
          Mutex* mu, const Condition& cond) {
  Wait(mu, RealMutexAwait(), mu, cond);
}
INTERPOSE(
    bool, MutexAwaitWithTimeout,
    _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
    Mutex* mu, const Condition& cond, Duration timeout) {
  return Wait(mu, RealMutexAwaitWithTimeout(), mu, cond, timeout);
}
INTERPOSE(bool, MutexAwaitWithDeadline,
          _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE,
          Mutex* mu, const Condition& cond, Time deadline) {
  return Wait(mu, RealMutexAwaitWithDeadline(), mu, cond, deadline);
}
INTERPOSE(void, CondVarWait, _ZN4absl7debian37CondVar4WaitEPNS0_5MutexE,
          CondVar* cv, Mutex* mu) {
  Wait(mu, RealCondVarWait(), cv, mu);
}
INTERPOSE(bool, CondVarWaitWithTimeout,
          _ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE,
          CondVar* cv, Mutex* mu, Duration timeout) {
  return Wait(mu, RealCondVarWaitWithTimeout(), cv, mu, timeout);
}
INTERPOSE(bool, CondVarWaitWithDeadline,
          _ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE,
          CondVar* cv, Mutex* mu, Time deadline) {
  return Wait(mu, RealCondVarWaitWithDeadline(), cv, mu, deadline);
}

// ~Mutex(): from our code, a later mutex at the same address starts afresh,
// and destroying a held mutex is reported.
INTERPOSE(void, MutexDestroy, _ZN4absl7debian35MutexD1Ev, Mutex* mu) {
  Call call;
  if (call.outermost() && CalledFromProgram(__builtin_return_address(0))) {
    __tsan_mutex_destroy(mu, 0);
  }
  RealMutexDestroy()(mu);
}

// Notification: what happened before Notify() happened before a wait that
// saw it.
INTERPOSE(void, NotificationNotify, _ZN4absl7debian312Notification6NotifyEv,
          Notification* n) {
  Call call;
  if (call.outermost()) __tsan_release(n);
  RealNotificationNotify()(n);
}
INTERPOSE(void, NotificationWait,
          _ZNK4absl7debian312Notification19WaitForNotificationEv,
          const Notification* n) {
  Call call;
  RealNotificationWait()(n);
  if (call.outermost()) __tsan_acquire(const_cast<Notification*>(n));
}
INTERPOSE(
    bool, NotificationWaitWithTimeout,
    _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE,
    const Notification* n, Duration timeout) {
  Call call;
  const bool notified = RealNotificationWaitWithTimeout()(n, timeout);
  if (notified && call.outermost()) {
    __tsan_acquire(const_cast<Notification*>(n));
  }
  return notified;
}
INTERPOSE(
    bool, NotificationWaitWithDeadline,
    _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE,
    const Notification* n, Time deadline) {
  Call call;
  const bool notified = RealNotificationWaitWithDeadline()(n, deadline);
  if (notified && call.outermost()) {
    __tsan_acquire(const_cast<Notification*>(n));
  }
  return notified;
}

namespace {

// Fails at start-up, naming the cause, when another definition of
// absl::Mutex::Lock comes first: then nothing would be told to TSan, and
// every member guarded by an absl::Mutex would be reported as a race.
__attribute__((constructor)) void CheckInterposition() {
  dl_iterate_phdr(FindProgram, nullptr);
  void* bound = dlsym(RTLD_DEFAULT, "_ZN4absl7debian35Mutex4LockEv");
  Dl_info bound_to = {}, self = {};
  dladdr(bound, &bound_to);
  dladdr(reinterpret_cast<void*>(&CheckInterposition), &self);
  if (bound == nullptr || bound_to.dli_fbase != self.dli_fbase) {
    std::fprintf(stderr,
                 "absl_sync_tsan: absl::Mutex::Lock binds to %s, not to %s: "
                 "link it before libabsl_synchronization\n",
                 bound_to.dli_fname != nullptr ? bound_to.dli_fname : "nothing",
                 self.dli_fname);
    std::abort();
  }
}

}  // namespace
