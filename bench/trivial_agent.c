/* The least a git-lfs custom transfer agent can do for an upload into a
 * folder store: copy the file to STORE/<oid[0:2]>/<oid[2:4]>/<oid> and say
 * complete. No hash, no size check, no fsync, no journal: a floor for the
 * push benchmark in folder_agent.py, never a tool. Downloads are refused.
 *
 *   cc -O2 -o trivial-agent bench/trivial_agent.c
 *   git config lfs.customtransfer.trivial.path /abs/trivial-agent
 *   git config lfs.customtransfer.trivial.args /abs/store
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The string value of "key" in a one-line JSON object, copied into out. */
static int field(const char *line, const char *key, char *out, size_t cap) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
  const char *at = strstr(line, pattern);
  if (!at)
    return 0;
  at += strlen(pattern);
  size_t n = 0;
  while (at[n] && at[n] != '"' && n + 1 < cap) {
    out[n] = at[n];
    n++;
  }
  out[n] = 0;
  return 1;
}

static int copy(const char *from, const char *to) {
  int in = open(from, O_RDONLY);
  if (in < 0)
    return -1;
  int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0) {
    close(in);
    return -1;
  }
  char buffer[1 << 16];
  ssize_t n;
  while ((n = read(in, buffer, sizeof buffer)) > 0)
    if (write(out, buffer, (size_t)n) != n) {
      n = -1;
      break;
    }
  close(in);
  return close(out) == 0 && n == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: trivial-agent STORE\n");
    return 2;
  }
  static char line[1 << 16];
  char event[32], oid[80], path[4096], target[8192];
  while (fgets(line, sizeof line, stdin)) {
    if (!field(line, "event", event, sizeof event))
      continue;
    if (strcmp(event, "init") == 0) {
      printf("{}\n");
    } else if (strcmp(event, "terminate") == 0) {
      break;
    } else if (field(line, "oid", oid, sizeof oid) && strlen(oid) == 64) {
      int ok = strcmp(event, "upload") == 0 && field(line, "path", path, sizeof path);
      if (ok) {
        snprintf(target, sizeof target, "%s/%.2s", argv[1], oid);
        mkdir(target, 0755);
        snprintf(target, sizeof target, "%s/%.2s/%.2s", argv[1], oid, oid + 2);
        mkdir(target, 0755);
        snprintf(target, sizeof target, "%s/%.2s/%.2s/%s", argv[1], oid, oid + 2, oid);
        ok = copy(path, target) == 0;
      }
      if (ok)
        printf("{\"event\":\"complete\",\"oid\":\"%s\"}\n", oid);
      else
        printf("{\"event\":\"complete\",\"oid\":\"%s\",\"error\":{\"code\":1,"
               "\"message\":\"cannot copy\"}}\n", oid);
    }
    fflush(stdout);
  }
  return 0;
}
