/* rtc.c: placeholder, being written. */
