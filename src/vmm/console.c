/* console.c: placeholder, being written. */
