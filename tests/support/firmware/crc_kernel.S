/*
 * A multiboot kernel (flat binary, "a.out kludge" header) that proves the bytes of the modules
 * a boot loader handed it: for each module it prints
 *
 *     MOD <module string> <length, 8 hex digits> <CRC-32, 8 hex digits>
 *
 * on COM1, then "END", then writes to QEMU's isa-debug-exit port (0xf4) so the VM ends.
 * The CRC is the common one (IEEE 802.3, reflected, as zlib, U-Boot's crc32 and cksum -o3).
 * Used for iPXE (kernel + module commands) and pxelinux (mboot.c32), neither of which prints a
 * digest itself. Built by the test with:
 *
 *     as --32 -o crc_kernel.o crc_kernel.S
 *     ld -m elf_i386 -Ttext 0x100000 --oformat binary -o crc_kernel.bin crc_kernel.o
 */
        .code32
        .set BASE, 0x100000
        .set MAGIC, 0x1BADB002
        .set FLAGS, 0x00010000          /* the load addresses below are valid */
        .globl _start
header:
        .long MAGIC, FLAGS, -(MAGIC + FLAGS)
        .long BASE                      /* header_addr */
        .long BASE                      /* load_addr */
        .long 0                         /* load_end_addr: the whole file */
        .long 0                         /* bss_end_addr: no bss */
        .long BASE + (_start - header)  /* entry_addr */
_start:
        cli
        mov $0x7c00, %esp               /* below 1 MiB: clear of the kernel and its modules */
        cmp $0x2BADB002, %eax           /* loaded by a multiboot loader? */
        jne no_modules
        testb $8, (%ebx)                /* mbi.flags: mods_count/mods_addr valid */
        jz no_modules
        mov 20(%ebx), %edi              /* mods_count */
        mov 24(%ebx), %ebp              /* mods_addr: {start, end, string, reserved} each */
        test %edi, %edi
        jz no_modules
next_module:
        mov $(BASE + tag_mod - header), %esi
        call puts
        mov 8(%ebp), %esi               /* the module's string (may be absent) */
        test %esi, %esi
        jz 1f
        call puts
1:      mov $' ', %al
        call putc
        mov 0(%ebp), %esi               /* mod_start */
        mov 4(%ebp), %ecx               /* mod_end (exclusive) */
        sub %esi, %ecx                  /* length */
        mov %ecx, %eax
        call hex32
        mov $' ', %al
        call putc
        mov $0xFFFFFFFF, %edx           /* CRC register */
        jecxz 4f
2:      movzbl (%esi), %eax
        xor %eax, %edx
        inc %esi
        mov $8, %ebx
3:      shr $1, %edx
        jnc 5f
        xor $0xEDB88320, %edx
5:      dec %ebx
        jnz 3b
        dec %ecx
        jnz 2b
4:      not %edx
        mov %edx, %eax
        call hex32
        mov $'\n', %al
        call putc
        add $16, %ebp
        dec %edi
        jnz next_module
        mov $(BASE + tag_end - header), %esi
        call puts
        jmp quit
no_modules:
        mov $(BASE + tag_none - header), %esi
        call puts
quit:
        mov $0xf4, %dx                  /* isa-debug-exit: QEMU exits with (0x10 << 1) | 1 */
        mov $0x10, %al
        out %al, %dx
9:      hlt
        jmp 9b

/* putc: the byte in %al to COM1 once its transmit register is empty. Keeps other registers. */
putc:
        push %edx
        push %eax
        mov $0x3fd, %dx                 /* line status register */
1:      in %dx, %al
        test $0x20, %al
        jz 1b
        pop %eax
        mov $0x3f8, %dx
        out %al, %dx
        pop %edx
        ret

/* puts: the NUL-terminated string at %esi, at most 100 bytes. Clobbers %esi and %al. */
puts:
        push %ecx
        mov $100, %ecx
1:      lodsb
        test %al, %al
        jz 2f
        call putc
        loop 1b
2:      pop %ecx
        ret

/* hex32: %eax as 8 lower-case hex digits. Clobbers %eax. */
hex32:
        push %ecx
        push %edx
        mov %eax, %edx
        mov $8, %ecx
1:      rol $4, %edx
        mov %dl, %al
        and $0xf, %al
        add $'0', %al
        cmp $'9', %al
        jbe 2f
        add $('a' - '9' - 1), %al
2:      call putc
        loop 1b
        pop %edx
        pop %ecx
        ret

tag_mod:  .asciz "MOD "
tag_end:  .asciz "END\n"
tag_none: .asciz "NO MODULES\n"
