/* fsc get -r: listing the folders, making them locally, and adding a job
 * per file. See getr.h. */
#include "getr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "fmt.h"
#include "rpath.h"

/* Downloads in flight at once for a tree (within the server's limit). */
#define GETR_PARALLEL 32

static int list_next(struct fsc_run *r, struct get_run *gr);
static int make_base(struct fsc_run *r, struct get_run *gr);

static const char *getr_arg(struct fsc_run *r, int i) {
  struct get_run *gr = r->state;
  return gr->remote[i];
}

/* Makes the folders of rel (all of it, or without its last component when
 * parent_only) beneath base, one component at a time: each must be a real
 * folder once made, never a link, so nothing is ever created through a
 * local link whatever the server's paths say. Returns 0 or a UV_E* code
 * (UV_ELOOP: a component is a link; UV_ENOTDIR: it is a file). */
static int mkdirs_beneath(const char *base, const char *rel, int parent_only) {
  int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  const char *p = rel;
  char comp[FSP_NAME_MAX + 1];
  int rc = 0;
  while (*p != '\0') {
    size_t n = strcspn(p, "/");
    if (parent_only && p[n] == '\0')
      break;
    if (n == 0 || n > FSP_NAME_MAX) {
      rc = UV_EINVAL;
      break;
    }
    memcpy(comp, p, n);
    comp[n] = '\0';
    if (mkdirat(fd, comp, 0777) != 0 && errno != EEXIST) {
      rc = -errno;
      break;
    }
    int sub = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      /* With O_DIRECTORY, Linux says ENOTDIR for a link too: tell it. */
      struct stat st;
      rc = -errno;
      if (errno == ELOOP || (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                             S_ISLNK(st.st_mode)))
        rc = UV_ELOOP;
      break;
    }
    close(fd);
    fd = sub;
    p += n;
    if (*p == '/')
      p++;
  }
  close(fd);
  return rc;
}

static int add_file(struct get_run *gr, const char *remote, const char *local) {
  if (gr->nfiles == gr->cap) {
    size_t nc = gr->cap ? 2 * gr->cap : 256;
    char **nr = fsc_realloc(gr->remote, nc * sizeof *nr);
    if (nr == NULL)
      return UV_ENOMEM;
    gr->remote = nr;
    char **nl = fsc_realloc(gr->local, nc * sizeof *nl);
    if (nl == NULL)
      return UV_ENOMEM;
    gr->local = nl;
    gr->cap = nc;
  }
  char *a = fsc_strdup(remote), *b = fsc_strdup(local);
  if (a == NULL || b == NULL) {
    fsc_free(a);
    fsc_free(b);
    return UV_ENOMEM;
  }
  gr->remote[gr->nfiles] = a;
  gr->local[gr->nfiles] = b;
  gr->nfiles++;
  return 0;
}

/* One entry of the listing: a folder is made at once; a file becomes a
 * job. Returns 1 for a job added, 0, or UV_ENOMEM. */
static int take_entry(struct fsc_run *r, struct get_run *gr,
                      const struct fsp_entry *e) {
  char local[PATH_MAX], remote[FSP_PATH_MAX + 1], esc[FSC_ESC_MAX];
  char rel[FSP_PATH_MAX + 1];
  if (fsc_rpath_local(local, sizeof local, gr->base, e->name.ptr,
                      e->name.len) != 0 ||
      fsc_rpath_join(remote, sizeof remote, gr->rdir, e->name.ptr,
                     e->name.len) < 0) {
    /* Only a broken or hostile server sends such a path. */
    fsc_fmt_escape(esc, sizeof esc, e->name.ptr, e->name.len);
    fsc_app_errorf(r->app, "get %s: refusing the server's path '%s'",
                   gr->rdir[0] ? gr->rdir : "/", esc);
    fsc_run_fail(r, FSC_EXIT_FAIL);
    return 0;
  }
  memcpy(rel, e->name.ptr, e->name.len);
  rel[e->name.len] = '\0';
  /* The folder that holds a file was usually made for the entry before
   * (a folder comes before its contents, and files of one folder come
   * together): checking it once per folder saves two opens per file. */
  size_t dir_len = e->type == FSP_TYPE_FOLDER ? e->name.len
                   : strrchr(rel, '/') != NULL
                       ? (size_t)(strrchr(rel, '/') - rel)
                       : 0;
  int rc = 0;
  if (dir_len > 0 && (dir_len != strlen(gr->last_dir) ||
                      memcmp(rel, gr->last_dir, dir_len) != 0)) {
    rc = mkdirs_beneath(gr->base, rel, e->type != FSP_TYPE_FOLDER);
    if (rc == 0 && dir_len < sizeof gr->last_dir) {
      memcpy(gr->last_dir, rel, dir_len);
      gr->last_dir[dir_len] = '\0';
    }
  }
  if (rc < 0) {
    char lesc[FSC_ESC_MAX];
    fsc_app_errorf(
        r->app, "get %s: cannot make the folder for %s: %s",
        fsc_esc(esc, sizeof esc, remote), fsc_esc(lesc, sizeof lesc, local),
        rc == UV_ELOOP ? "a symbolic link is in the way" : uv_strerror(rc));
    fsc_run_fail(r, FSC_EXIT_FAIL);
    return 0;
  }
  if (e->type == FSP_TYPE_FOLDER)
    return 0;
  rc = add_file(gr, remote, local);
  if (rc < 0)
    return rc;
  gr->prog.files++;
  gr->prog.sizes_known++;
  gr->prog.total += e->size;
  return 1;
}

static void list_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct fsc_run *r = req->data;
  struct get_run *gr = r->state;
  char msg[FSC_MSG_MAX], esc[FSC_ESC_MAX];
  /* The PATH's own folder is made once the server answered with its
   * entries (not for a file or a missing PATH); without it, they are left
   * out (make_base said why). */
  int have_base =
      (m->op == FSP_OP_ENTRIES || m->op == FSP_OP_OK) && make_base(r, gr) == 0;
  if (m->op == FSP_OP_ENTRIES) {
    size_t pos = 0;
    struct fsp_entry e;
    int added = 0, rc = 0;
    while (have_base && rc >= 0 && fsp_entries_next(m, &pos, &e) == 1) {
      rc = take_entry(r, gr, &e);
      added += rc > 0;
    }
    if (rc < 0 || fsc_run_add_jobs(r, added) < 0) {
      fsc_app_errorf(r->app, "get: %s", fsc_strerror(UV_ENOMEM));
      fsc_run_fail(r, FSC_EXIT_FAIL);
    }
    snprintf(gr->prog.label, sizeof gr->prog.label, "%d files", gr->prog.files);
    return;
  }
  if (m->op != FSP_OP_OK && m->op != FSP_OP_ERROR)
    return;
  fsc_conn_finish(&r->app->conn, req);
  if (m->op == FSP_OP_ERROR) {
    fsc_server_msg(msg, sizeof msg, m);
    fsc_app_errorf(r->app, "get %s: %s",
                   fsc_esc(esc, sizeof esc, r->cmd.args[gr->listing]), msg);
    fsc_run_fail(r, FSC_EXIT_FAIL);
  }
  if (!list_next(r, gr))
    fsc_run_release(r);
}

static void list_lost(struct fsc_req *req, int err) {
  struct fsc_run *r = req->data;
  struct get_run *gr = r->state;
  (void)err;
  gr->listing = r->cmd.nargs;
  fsc_run_fail(r, FSC_EXIT_CONN);
  fsc_run_release(r);
}

static const struct fsc_req_ops list_ops = {list_msg, NULL, list_lost};

/* The local folder PATH lands in: -o DIR (default ".") and PATH's last
 * component, made now (the top folder itself lands in DIR). Returns 0 or -1
 * after saying why. */
static int list_base(struct fsc_run *r, struct get_run *gr, const char *arg) {
  const char *out = r->cmd.out != NULL ? r->cmd.out : ".";
  char esc[FSC_ESC_MAX];
  if (fsc_app_rpath(r->app, arg, gr->rdir, sizeof gr->rdir, 1) != 0) {
    fsc_app_errorf(r->app, "get %s: %s", fsc_esc(esc, sizeof esc, arg),
                   fsp_strerror(FSP_EBADNAME));
    return -1;
  }
  gr->base_made = 0;
  gr->last_dir[0] = '\0';
  if (gr->rdir[0] == '\0') {
    snprintf(gr->base, sizeof gr->base, "%s", out);
    gr->base_made = 1; /* begin made -o DIR */
    return 0;
  }
  const char *name = fsc_rpath_base(gr->rdir);
  if (fsc_rpath_local(gr->base, sizeof gr->base, out, name, strlen(name)) !=
      0) {
    fsc_app_errorf(r->app, "get %s: %s", fsc_esc(esc, sizeof esc, arg),
                   uv_strerror(UV_ENAMETOOLONG));
    return -1;
  }
  return 0;
}

/* Makes the folder PATH lands in, once the server answered the LIST (not
 * for a PATH that is a file or is missing). Returns 0, or -1 after saying
 * why (its entries are then left out). */
static int make_base(struct fsc_run *r, struct get_run *gr) {
  char esc[FSC_ESC_MAX];
  if (gr->base_made != 0)
    return gr->base_made > 0 ? 0 : -1;
  const char *name = fsc_rpath_base(gr->rdir);
  int rc = mkdirs_beneath(r->cmd.out != NULL ? r->cmd.out : ".", name, 0);
  gr->base_made = rc == 0 ? 1 : -1;
  if (rc == 0)
    return 0;
  char lesc[FSC_ESC_MAX];
  fsc_app_errorf(r->app, "get %s: cannot make %s: %s",
                 fsc_esc(esc, sizeof esc, r->cmd.args[gr->listing]),
                 fsc_esc(lesc, sizeof lesc, gr->base),
                 rc == UV_ELOOP ? "a symbolic link is in the way"
                                : uv_strerror(rc));
  fsc_run_fail(r, FSC_EXIT_FAIL);
  return -1;
}

/* Lists the next PATH. Returns 1 when a LIST is in flight, 0 after the
 * last (the caller then lets the run go). */
static int list_next(struct fsc_run *r, struct get_run *gr) {
  while (++gr->listing < r->cmd.nargs && !r->canceled && !r->lost) {
    if (list_base(r, gr, r->cmd.args[gr->listing]) < 0) {
      fsc_run_fail(r, FSC_EXIT_FAIL);
      continue;
    }
    struct fsp_msg m;
    fsc_rpath_msg(&m, FSP_OP_LIST, r->app->conn.version, FSP_LIST_RECURSIVE,
                  gr->rdir);
    gr->list.ops = &list_ops;
    gr->list.data = r;
    int rc = fsc_conn_request(&r->app->conn, &gr->list, &m);
    if (rc == 0)
      return 1;
    fsc_app_errorf(r->app, "get: %s", fsc_strerror(rc));
    fsc_run_fail(r, FSC_EXIT_FAIL);
  }
  return 0;
}

int fsc_getr_begin(struct fsc_run *r, struct get_run *gr) {
  int rc = fsc_app_need_tree(r->app, "get -r");
  if (rc != 0)
    return rc;
  gr->tree = 1;
  gr->listing = -1;
  r->job_arg = getr_arg;
  r->drop_finished = 1;
  r->njobs = 0;
  /* Small files must not wait for a round trip each: many downloads in
   * flight, leaving room for the LIST, a subscription and a CANCEL. What
   * waits for the disk stays bounded by get.c's high-water mark. */
  int server = (int)r->app->conn.peer_max_inflight - 3;
  r->parallel = GETR_PARALLEL < server ? GETR_PARALLEL : server;
  if (r->parallel < 1)
    r->parallel = 1;
  /* -o DIR is made when missing (one level, as mkdir does). */
  if (r->cmd.out != NULL && mkdir(r->cmd.out, 0777) != 0 && errno != EEXIST) {
    char esc[FSC_ESC_MAX];
    fsc_app_errorf(r->app, "get: cannot make %s: %s",
                   fsc_esc(esc, sizeof esc, r->cmd.out), strerror(errno));
    return FSC_EXIT_FAIL;
  }
  fsc_progress_start(&gr->prog, r->app, 0, "", 0);
  /* Nothing listed (every PATH refused at once): the run, once started,
   * ends with no job. */
  if (list_next(r, gr))
    fsc_run_hold(r);
  return 0;
}

void fsc_getr_free(struct fsc_run *r, struct get_run *gr) {
  if (gr->list.registered)
    fsc_conn_finish(&r->app->conn, &gr->list);
  for (size_t i = 0; i < gr->nfiles; i++) {
    fsc_free(gr->remote[i]);
    fsc_free(gr->local[i]);
  }
  fsc_free(gr->remote);
  fsc_free(gr->local);
}
