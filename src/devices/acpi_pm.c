/* acpi_pm.c: placeholder, being written. */
