/*
 * console_assets.S - the web console's files (server/console/), placed in
 * the binary as they are (console.c serves them).  Each is NAME .. NAME_end.
 */
#define ASSET(name, file)            \
    .globl name, name##_end;         \
    .balign 16;                      \
name:                                \
    .incbin file;                    \
name##_end:

    .section .rodata
ASSET(pdqm_console_index, "server/console/index.html")
ASSET(pdqm_console_js, "server/console/app.js")
ASSET(pdqm_console_css, "server/console/app.css")
ASSET(pdqm_console_icon, "server/console/icon.svg")

    /* No executable stack. */
    .section .note.GNU-stack,"",@progbits
