/* An intrusive, circular, doubly linked list (as libuv's queue and
 * wayland's wl_list): the links live inside the listed structs, so adding
 * and removing never allocate, and removal is O(1) without the head. A
 * head is a struct fsd_list of its own; an empty list, or a node in no
 * list, points to itself. */
#ifndef FSD_LIST_H
#define FSD_LIST_H

#include <stddef.h>

struct fsd_list {
  struct fsd_list *prev;
  struct fsd_list *next;
};

/* The struct of type that holds member at node. */
#define fsd_container_of(node, type, member)                                   \
  ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* Walks head's nodes from first to last; n is the next node, fetched before
 * the body runs, so the body may remove (and free) the node it is given. */
#define fsd_list_each_safe(node, n, head)                                      \
  for ((node) = (head)->next, (n) = (node)->next; (node) != (head);            \
       (node) = (n), (n) = (node)->next)

/* Makes l an empty list (or a node in no list). */
static inline void fsd_list_init(struct fsd_list *l) {
  l->prev = l;
  l->next = l;
}

/* Non-zero when l has no nodes (or, for a node, is in no list). */
static inline int fsd_list_empty(const struct fsd_list *l) {
  return l->next == l;
}

/* Links node as the first of head. */
static inline void fsd_list_push(struct fsd_list *head, struct fsd_list *node) {
  node->next = head->next;
  node->prev = head;
  head->next->prev = node;
  head->next = node;
}

/* Links node as the last of head. */
static inline void fsd_list_append(struct fsd_list *head,
                                   struct fsd_list *node) {
  node->prev = head->prev;
  node->next = head;
  head->prev->next = node;
  head->prev = node;
}

/* Unlinks node from its list, leaving it in none; harmless when it is in
 * none already. */
static inline void fsd_list_remove(struct fsd_list *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  fsd_list_init(node);
}

/* Unlinks and returns the first node of head, or NULL when it is empty. */
static inline struct fsd_list *fsd_list_pop(struct fsd_list *head) {
  struct fsd_list *node = head->next;

  if (node == head)
    return NULL;
  fsd_list_remove(node);
  return node;
}

#endif /* FSD_LIST_H */
