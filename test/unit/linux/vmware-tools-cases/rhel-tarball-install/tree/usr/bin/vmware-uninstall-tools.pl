#!/usr/bin/perl -w
