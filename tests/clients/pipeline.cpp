// A threaded C++ program in the style of a server's request pipeline, for
// tests/clients/run.py: parser threads turn lines of text into request
// objects (strings, vectors, shared and unique pointers, an over-aligned
// buffer), hand them through bounded queues to worker threads that answer
// them and free them (frees in another thread than the allocation), and a
// cache shared under a mutex keeps recent answers and evicts old ones.
// Everything it prints depends only on its arguments, never on the thread
// schedule: the same output under any correct allocator.
//
//   pipeline PARSERS WORKERS REQUESTS
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

uint64_t next_random(uint64_t &state) {
  state = state * 6364136223846793005ull + 1442695040888963407ull;
  return state >> 17;
}

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

uint64_t digest(const std::string &s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

struct alignas(128) Scratch {
  unsigned char bytes[384];
};

struct Request {
  uint64_t id;
  std::string verb, path;
  std::vector<std::string> headers;
  std::shared_ptr<const std::string> body;
  std::unique_ptr<Scratch> scratch;
};

// A bounded queue: a full queue makes the parser wait, so that requests
// are freed by workers while others are still being made.
class Queue {
 public:
  explicit Queue(size_t limit) : limit_(limit) {}
  void put(std::unique_ptr<Request> r) {
    std::unique_lock<std::mutex> lock(m_);
    room_.wait(lock, [&] { return items_.size() < limit_; });
    items_.push_back(std::move(r));
    ready_.notify_one();
  }
  std::unique_ptr<Request> take() {
    std::unique_lock<std::mutex> lock(m_);
    ready_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return nullptr;
    std::unique_ptr<Request> r = std::move(items_.front());
    items_.pop_front();
    room_.notify_one();
    return r;
  }
  void close() {
    std::lock_guard<std::mutex> lock(m_);
    closed_ = true;
    ready_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable ready_, room_;
  std::deque<std::unique_ptr<Request>> items_;
  size_t limit_;
  bool closed_ = false;
};

// Recent answers by path, least recently used evicted first. Hits depend
// on the schedule, so they are not printed; the answers themselves are.
class Cache {
 public:
  explicit Cache(size_t limit) : limit_(limit) {}
  void remember(const std::string &path, const std::string &answer) {
    std::lock_guard<std::mutex> lock(m_);
    auto found = index_.find(path);
    if (found != index_.end()) {
      order_.erase(found->second);
      index_.erase(found);
    }
    order_.push_front({path, answer});
    index_[path] = order_.begin();
    while (order_.size() > limit_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

 private:
  std::mutex m_;
  std::list<std::pair<std::string, std::string>> order_;
  std::unordered_map<std::string, std::list<std::pair<std::string, std::string>>::iterator> index_;
  size_t limit_;
};

const char *const kVerbs[] = {"GET", "PUT", "POST", "DELETE", "HEAD"};

// The text of request `id`: what a client would have sent.
std::string request_text(uint64_t id) {
  uint64_t s = id * 2654435761u + 7;
  std::string t = kVerbs[next_random(s) % 5];
  t += " /";
  int depth = 1 + (int)(next_random(s) % 5);
  for (int i = 0; i < depth; i++) {
    t += "seg" + std::to_string(next_random(s) % 300);
    t += i + 1 < depth ? "/" : "";
  }
  int headers = (int)(next_random(s) % 9);
  for (int i = 0; i < headers; i++)
    t += "\nX-H" + std::to_string(i) + ": " + std::string(1 + next_random(s) % 60, (char)('a' + i));
  if (next_random(s) % 3 == 0) t += "\n\n" + std::string(next_random(s) % 5000, 'b');
  return t;
}

std::unique_ptr<Request> parse(uint64_t id, const std::string &text) {
  auto r = std::make_unique<Request>();
  r->id = id;
  size_t line_end = text.find('\n');
  std::string first = text.substr(0, line_end);
  size_t space = first.find(' ');
  r->verb = first.substr(0, space);
  r->path = first.substr(space + 1);
  size_t at = line_end;
  while (at != std::string::npos && at + 1 < text.size() && text[at + 1] != '\n') {
    size_t next = text.find('\n', at + 1);
    r->headers.push_back(text.substr(at + 1, next == std::string::npos ? next : next - at - 1));
    at = next;
  }
  if (at != std::string::npos && at + 2 <= text.size())
    r->body = std::make_shared<const std::string>(text.substr(at + 2));
  if (r->verb == "POST" || r->verb == "PUT") {
    r->scratch.reset(new Scratch);
    for (size_t i = 0; i < sizeof r->scratch->bytes; i++) r->scratch->bytes[i] = (unsigned char)(id + i);
  }
  return r;
}

std::string answer(const Request &r) {
  std::map<std::string, size_t> counts;
  for (const std::string &h : r.headers) counts[h.substr(0, h.find(':'))] += h.size();
  std::string a = r.verb + " " + r.path + " ->";
  for (const auto &c : counts) a += " " + c.first + "=" + std::to_string(c.second);
  if (r.body) a += " body=" + std::to_string(r.body->size());
  if (r.scratch) a += " scratch=" + std::to_string(r.scratch->bytes[17]);
  return a;
}

}  // namespace

int main(int argc, char **argv) {
  int parsers = argc > 1 ? atoi(argv[1]) : 3;
  int workers = argc > 2 ? atoi(argv[2]) : 3;
  uint64_t requests = argc > 3 ? strtoull(argv[3], nullptr, 10) : 200000;
  if (parsers < 1 || workers < 1) return 2;

  Queue queue(256);
  Cache cache(4096);
  std::vector<uint64_t> sums(workers, 0), served(workers, 0);
  std::vector<std::thread> threads;
  for (int p = 0; p < parsers; p++)
    threads.emplace_back([&, p] {
      for (uint64_t id = (uint64_t)p; id < requests; id += (uint64_t)parsers)
        queue.put(parse(id, request_text(id)));
    });
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; w++)
    pool.emplace_back([&, w] {
      // a sum of the answers' digests: the same whatever worker served them
      while (std::unique_ptr<Request> r = queue.take()) {
        std::string a = answer(*r);
        cache.remember(r->path, a);
        sums[w] += digest(a) ^ r->id;
        served[w]++;
      }
    });
  for (std::thread &t : threads) t.join();
  queue.close();
  for (std::thread &t : pool) t.join();

  uint64_t total = 0, count = 0;
  for (int w = 0; w < workers; w++) {
    total += sums[w];
    count += served[w];
  }
  // one answer per verb, recomputed here, for a readable line
  uint64_t h = 0;
  for (uint64_t id = 0; id < 5; id++) h = mix(h, digest(answer(*parse(id, request_text(id)))));
  printf("requests %llu, answers digest %016llx, first five %016llx\n", (unsigned long long)count,
         (unsigned long long)total, (unsigned long long)h);
  return count == requests ? 0 : 1;
}
