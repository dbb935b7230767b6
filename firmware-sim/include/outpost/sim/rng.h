// Deterministic pseudo-random numbers for the simulator: the same seed gives the same fleet.
//
// xoshiro256** seeded through splitmix64. Not cryptographic. Not thread-safe: each device
// owns its generators, so results do not depend on thread scheduling.
#pragma once

#include <cstdint>

namespace outpost::sim {

// Mixes a run seed with up to two stream identifiers (device index, purpose) into an
// independent 64-bit seed: changing one stream's use never shifts another's numbers.
uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b = 0);

class Rng {
 public:
  explicit Rng(uint64_t seed);

  uint64_t next();
  // Uniform in [0, 1).
  double uniform();
  // Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal (mean 0, deviation 1).
  double normal();
  // Uniform integer in [0, n); 0 if n is 0.
  uint64_t below(uint64_t n);
  // True with probability p (p <= 0: never, p >= 1: always).
  bool chance(double p) { return uniform() < p; }
  // Exponentially distributed with the given mean (mean <= 0 gives 0).
  double exponential(double mean);

 private:
  uint64_t s_[4];
};

}  // namespace outpost::sim
