# Loads the Vagrantfile with a stand-in for Vagrant that records what it configures,
# and prints it as JSON: which machines, their IPs, hostnames and provider resources.
require "json"

# Provider settings: any `x.key = value` is recorded.
class Settings
  def initialize(data)
    @data = data
  end

  def method_missing(name, *args)
    key = name.to_s
    return super unless key.end_with?("=")
    @data[key.chomp("=")] = args.first
  end

  def respond_to_missing?(*)
    true
  end
end

# config.vm: the parts of Vagrant's API the Vagrantfile uses.
class VM
  def initialize(data)
    @data = data
  end

  def box=(value)
    @data["box"] = value
  end

  def hostname=(value)
    @data["hostname"] = value
  end

  def synced_folder(*args, **opts)
    (@data["synced_folders"] ||= []) << args
  end

  def network(kind, **opts)
    (@data["networks"] ||= []) << { "kind" => kind }.merge(opts.transform_keys(&:to_s))
  end

  def provider(name)
    yield Settings.new(((@data["providers"] ||= {})[name.to_s] ||= {}))
  end

  def define(name)
    machine = { "name" => name, "vm" => {} }
    (@data["machines"] ||= []) << machine
    yield Config.new(machine["vm"])
  end
end

class Config
  attr_reader :vm

  def initialize(data)
    @vm = VM.new(data)
  end
end

module Vagrant
  RESULT = {}

  def self.configure(_version)
    yield Config.new(RESULT)
  end
end

load ARGV.fetch(0)
puts JSON.generate({ "config" => Vagrant::RESULT, "default_provider" => ENV["VAGRANT_DEFAULT_PROVIDER"] })
